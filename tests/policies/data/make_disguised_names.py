"""Writes ``disguised-names.json`` beside this file: the labelled prompts that calibrate and test name matching.

    python tests/policies/data/make_disguised_names.py

The disguises are made here by plain string edits, independently of ``policies.names``: Cyrillic and Greek
look-alike letters, leetspeak, a swap of two neighbouring letters, plurals, broken-up spacing, invisible,
full-width, mathematical, tag and combining characters, applied to twelve made-up characters in four prompt
templates. The benign prompts are written by hand: each shares words with a character's name (or comes one
letter from them), and none of them names it. The field report's prompts
(``shared/testdata/field-reports/disguised-names.json``) are copied in as they are.

``not_blocked_by_design`` holds misspellings the matcher leaves alone on purpose (a short word, or two edits):
they are reported, not required.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIELD_REPORT = HERE.parents[3] / "shared" / "testdata" / "field-reports" / "disguised-names.json"

# name, aliases, plural as English writes it
ROSTER = [
    ("Captain Comet", ["the comet kid"], "Captain Comets"),
    ("Robo Pup", ["robopup"], "Robo Pups"),
    ("Frost Giant", [], "Frost Giants"),
    ("Steamboat Mouse", [], "Steamboat Mice"),
    ("Glimmerwing", [], "Glimmerwings"),
    ("Professor Paradox", ["Doc Paradox"], "Professor Paradoxes"),
    ("Lady Nightshade", [], "Lady Nightshades"),
    ("Thunder Squirrel", [], "Thunder Squirrels"),
    ("Moonbeam Marauder", [], "Moonbeam Marauders"),
    ("Sergeant Spark", [], "Sergeant Sparks"),
    ("Pixel Pirate", [], "Pixel Pirates"),
    ("Nova Knight", [], "Nova Knights"),
]

TEMPLATES = [
    "{} flying over a city",
    "a watercolor of {} eating ramen",
    "{} and friends at the beach, 4k",
    "cinematic shot: {} in the rain at night",
]

CYRILLIC = dict(zip("aeopcxyisjhACEHKMOPTXB", "аеорсхуіѕјһАСЕНКМОРТХВ", strict=True))
GREEK = dict(zip("aopiktuvnABEZHIKMNOPTXY", "αορικτυνηΑΒΕΖΗΙΚΜΝΟΡΤΧΥ", strict=True))
LEET_LIGHT = {"a": "4", "e": "3", "o": "0", "i": "1"}
LEET_HEAVY = {"a": "4", "e": "3", "o": "0", "i": "1", "s": "5", "t": "7", "l": "1"}
LEET_SYMBOLS = {"a": "@", "s": "$", "i": "!"}
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]


def every_other(name: str, table: dict[str, str]) -> str:
    """Replace every second replaceable letter (the first one always)."""
    out, n = [], 0
    for c in name:
        if c in table:
            out.append(table[c] if n % 2 == 0 else c)
            n += 1
        else:
            out.append(c)
    return "".join(out)


def first_per_word(name: str, table: dict[str, str]) -> str:
    words = []
    for w in name.split(" "):
        for i, c in enumerate(w):
            if c.lower() in table:
                w = w[:i] + table[c.lower()] + w[i + 1:]
                break
        words.append(w)
    return " ".join(words)


def all_of(name: str, table: dict[str, str]) -> str:
    return "".join(table.get(c.lower(), c) if c.lower() in table else c for c in name)


def swap(name: str, at: str) -> str | None:
    """Swap two neighbouring letters inside the longest word (not its first letter), at its middle or start."""
    words = name.split(" ")
    k = max(range(len(words)), key=lambda i: len(words[i]))
    w = words[k]
    i = len(w) // 2 - 1 if at == "middle" else 1
    if i < 1 or w[i] == w[i + 1]:
        i += 1
    words[k] = w[:i] + w[i + 1] + w[i] + w[i + 2:]
    return " ".join(words)


def inside(name: str, mark: str) -> str:
    """``mark`` after the second letter of each word."""
    return " ".join(w[:2] + mark + w[2:] if len(w) > 2 else w for w in name.split(" "))


def fullwidth(name: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in name)


def math_bold(name: str) -> str:
    return "".join(chr(0x1D400 + ord(c) - 65) if c.isupper() else chr(0x1D41A + ord(c) - 97) if c.islower() else c
                   for c in name)


def spaced(name: str) -> str:
    return "  ".join(" ".join(w) for w in name.split(" "))


def combining(name: str) -> str:
    return "".join(c + "\u0336" if c.isalpha() else c for c in name)


def accents(name: str) -> str:
    return "".join({"a": "á", "e": "ë", "o": "ô", "i": "ï", "u": "ü"}.get(c, c) for c in name)


def tag(name: str) -> str:
    return inside(name, "\U000e0063\U000e006f")  # TAG LATIN SMALL LETTER C, O


DISGUISES = {
    "cyrillic_lookalikes": lambda n: every_other(n, CYRILLIC),
    "greek_lookalikes": lambda n: every_other(n, GREEK),
    "leetspeak": lambda n: first_per_word(n, LEET_LIGHT),
    "leetspeak_heavy": lambda n: all_of(n, LEET_HEAVY),
    "leetspeak_symbols": lambda n: first_per_word(n, LEET_SYMBOLS),
    "lookalikes_and_leetspeak": lambda n: every_other(first_per_word(n, LEET_LIGHT), CYRILLIC),
    "transposition": lambda n: swap(n, "middle"),
    "transposition_early": lambda n: swap(n, "start"),
    "spaced": spaced,
    "zero_width": lambda n: inside(n, "\u200b"),
    "other_invisible": None,  # one per template, below
    "soft_hyphen": lambda n: inside(n, "\u00ad"),
    "fullwidth": fullwidth,
    "math_letters": math_bold,
    "tag_characters": tag,
    "combining_marks": combining,
    "accents": accents,
}


def transposition_catchable(name: str) -> bool:
    """The matcher's documented reach: a swap in a word of 5+ letters of a several-word name, 7+ alone."""
    words = name.split(" ")
    return max(len(w) for w in words) >= (5 if len(words) > 1 else 7)


def must_block() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    block: list[dict[str, str]] = []
    by_design: list[dict[str, str]] = []
    for name, aliases, plural in ROSTER:
        for kind, make in DISGUISES.items():
            for t, template in enumerate(TEMPLATES):
                if kind == "other_invisible":
                    written = inside(name, INVISIBLE[t % len(INVISIBLE)])
                else:
                    written = make(name)
                if written is None or written == name:  # nothing to replace in this name
                    continue
                row = {"prompt": template.format(written), "character": name, "kind": kind}
                if kind.startswith("transposition") and not transposition_catchable(name):
                    by_design.append({**row, "why": "a swap in a word shorter than the matcher corrects"})
                else:
                    block.append(row)
        for template in TEMPLATES:
            block.append({"prompt": template.format(plural), "character": name, "kind": "plural"})
        block.append({"prompt": f"the {plural.lower()}' hideout at dawn", "character": name,
                      "kind": "plural_possessive"})
        for alias in aliases:
            for kind in ("cyrillic_lookalikes", "leetspeak", "leetspeak_heavy", "spaced", "zero_width"):
                block.append({"prompt": TEMPLATES[0].format(DISGUISES[kind](alias)), "character": name,
                              "kind": f"alias_{kind}"})
    # misspellings the matcher does not correct, by design
    for prompt, name, why in [
        ("Captain Comat flying over a city", "Captain Comet", "a replaced letter in a 5-letter word"),
        ("Captin Comet flying over a city", "Captain Comet", "a dropped letter in a 7-letter word"),
        ("Kaptain Komet flying over a city", "Captain Comet", "two replaced letters (sounds alike)"),
        ("Robo Pupp at the park", "Robo Pup", "an added letter in a 3-letter word"),
        ("Frost Gitan in the snow", "Frost Giant", "a letter moved two places"),
        ("Glimerwing over the lake", "Glimmerwing", "a dropped letter in a one-word name"),
        ("Lady Nitshade at midnight", "Lady Nightshade", "two dropped letters"),
        ("Nvoa Knight at the castle", "Nova Knight", "a swap in a 4-letter word"),
    ]:
        by_design.append({"prompt": prompt, "character": name, "kind": "misspelling", "why": why})
    # one edit of any kind in a long word of a several-word name, a swap in each word, the whole name as one word
    for prompt, name, kind in [
        ("Lady Nightshde at midnight", "Lady Nightshade", "dropped_letter"),
        ("Lady Nighttshade at midnight", "Lady Nightshade", "added_letter"),
        ("Lady Nightshadr at midnight", "Lady Nightshade", "replaced_letter"),
        ("Moonbeam Marauer on the roof", "Moonbeam Marauder", "dropped_letter"),
        ("Moonbeam Maraudor on the roof", "Moonbeam Marauder", "replaced_letter"),
        ("Thunder Squirel in the oak", "Thunder Squirrel", "dropped_letter"),
        ("Thunder Squirrell in the oak", "Thunder Squirrel", "added_letter"),
        ("Sargeant Spark at the parade", "Sergeant Spark", "replaced_letter"),
        ("Professer Paradox at the board", "Professor Paradox", "replaced_letter"),
        ("Proffessor Paradox at the board", "Professor Paradox", "added_letter"),
        ("Forst Gaint in the snow", "Frost Giant", "transposition_both_words"),
        ("Captian Cmoet at a party", "Captain Comet", "transposition_both_words"),
        ("Captaincomet at a party", "Captain Comet", "one_word"),
        ("Captiancomet at a party", "Captain Comet", "one_word_transposition"),
        ("Moonbeammarauder on the roof", "Moonbeam Marauder", "one_word"),
        ("Pixelpriate on a raft", "Pixel Pirate", "one_word_transposition"),
        ("Novaknihgt at the castle", "Nova Knight", "one_word_transposition"),
        ("Glimmerwnig over the lake", "Glimmerwing", "transposition"),
        ("Gilmmerwing over the lake", "Glimmerwing", "transposition"),
        ("Captain Comet's ship at sea", "Captain Comet", "possessive"),
        ("C-a-p-t-a-i-n C-o-m-e-t at sea", "Captain Comet", "hyphenated_letters"),
        ("CAPTAIN_COMET at sea", "Captain Comet", "underscore"),
        ("Captain\nComet at sea", "Captain Comet", "line_break"),
        ("Steamboat Mouses at the harbour", "Steamboat Mouse", "plural"),
        ("Lady-Nightshade at midnight", "Lady Nightshade", "hyphenated"),
        ("ⓒⓐⓟⓣⓐⓘⓝ ⓒⓞⓜⓔⓣ at sea", "Captain Comet", "circled_letters"),
        ("🅲🅰🅿🆃🅰🅸🅽 🅲🅾🅼🅴🆃 at sea", "Captain Comet", "boxed_letters"),
        ("🇨🇦🇵🇹🇦🇮🇳 🇨🇴🇲🇪🇹 at sea", "Captain Comet", "regional_indicators"),
        ("Сарtаіn Соmеt at sea", "Captain Comet", "cyrillic_lookalikes_all"),
        ("ROBO PUP at the park", "Robo Pup", "upper_case"),
        ("r0b0pup at the park", "Robo Pup", "alias_leetspeak"),
    ]:
        block.append({"prompt": prompt, "character": name, "kind": kind})
    return block, by_design


# Benign prompts: each shares a word with a character's name, or is one letter from it, and names none.
HARD_NEGATIVES = {
    "Captain Comet": [
        "a ship's captain watches a comet over the sea",
        "the captain comes home after the storm",
        "a comet streaks past as the captain steers the boat",
        "captain of the football team celebrating a goal",
        "a comet tail over a quiet mountain village",
        "the team captain and the comedian share a meal",
        "captains and comets drawn in chalk on a sidewalk",
        "a kid watching a comet from a rooftop",
        "captain combat training on the deck of a frigate",
        "the captain's comet-shaped kite in the wind",
        "a comet kit for kids on a wooden table",
        "an old sea captain looks up; a comet crosses the sky",
        "the captain commits to the voyage at dawn",
        "a pilot and a captain comment on the weather",
        "the comet came back after seventy years",
        "the captain commanded the crew to row",
        "a captain, comet-bright eyes, at the helm",
        "captain compost day at the community farm",
        "the captain committee meets on Tuesday",
        "Captain Cook's ship in a storm",
        "a comet captured by a backyard telescope",
        "the captain combed his grey beard",
        "a comic about a captain and a cat",
        "a captain's log entry about a comet",
        "the team captain comes off the field",
        "a comet, the captain said, pointing up",
        "the comte and the captain at a masked ball",
    ],
    "Robo Pup": [
        "a robot puppy plays fetch in the yard",
        "a robotic pup learns to walk",
        "a robo vacuum and a sleepy pup",
        "a pup chases a robot across the kitchen",
        "the robo pupil answers the teacher",
        "a robot pulls a wagon with a pup inside",
        "robot pups in a futuristic kennel",
        "a pup named Robin runs on the beach",
        "a little pup in a robe by the fire",
        "rob the pup of his bone, a funny cartoon",
        "robo puppet theater for children",
        "a robo puppy? no, a real puppy on a sofa",
        "the robo pupa hatches in a lab",
        "a robot pup-sitter in a smart home",
        "a robo pub crawl in a neon city",
        "robopuppet show at the fair",
    ],
    "Frost Giant": [
        "frost on a giant oak tree at sunrise",
        "a giant frosted cake at a wedding",
        "a frosty giant snowman in a park",
        "a giant covered in frost sleeps in a cave",
        "the first frost on giant pumpkins",
        "a frost-covered giant sequoia forest",
        "giant frost crystals on a window, macro",
        "a front gate of a giant castle",
        "Robert Frost reading a poem to a giant crowd",
        "Frost, giant snowflakes and a red sled",
        "a giant frost-bitten pine on a ridge",
        "frost giantly spreading over the windshield",
        "a frozen giant statue in a square",
        "front-row giants of basketball, slow motion",
    ],
    "Steamboat Mouse": [
        "a mouse aboard a steamboat on the Mississippi",
        "steamboat races on a wide river at dusk",
        "a computer mouse next to a toy steamboat",
        "steamboat mousse cake at a birthday party",
        "a steamboat museum with old paddle wheels",
        "a field mouse eats a seed",
        "a steamboat whistle blows; a mouse hides",
        "mouse pad with a steamboat print",
        "steamboat mouser cat sleeping on deck",
        "the steamboat; mouse traps below deck",
        "a steamboat, mouse-grey in the fog",
        "steamboat mouth of the river at dawn",
        "a steamboat moused by a curious cat, cartoon",
        "a toy steamboat and a toy mouse in a bathtub",
    ],
    "Glimmerwing": [
        "a glimmer on the wing of a dragonfly",
        "glimmering wings of a butterfly in the sun",
        "a glimmering lake at dawn",
        "the wing of a plane glimmers in the light",
        "a glimmer of hope, a bird on the wing",
        "glimmerwood forest with glowing mushrooms",
        "shimmering wings of a fairy",
        "a glimmering wing of a hummingbird",
        "the glimmer of a wing under the moon",
        "glimmerwood elves in a misty valley",
        "a winged glimmer of light over the sea",
        "glimmering wingtips of a jet at sunset",
    ],
    "Professor Paradox": [
        "a professor explains a paradox on the blackboard",
        "the professor's paradox lecture hall is empty",
        "a paradox: the professor is his own student",
        "professors discuss the twin paradox",
        "a doctor and a paradox puzzle book",
        "professor of physics at a paradise beach",
        "a doc explains the grandfather paradox",
        "professor parades through the campus",
        "the professor, paradox in hand, smiles",
        "professor pardons a late student",
        "professorial paradoxes in a philosophy class",
        "a paradox professor? no, a math teacher",
        "doc paradise resort on a tropical island",
    ],
    "Lady Nightshade": [
        "a lady picks nightshade berries in the garden",
        "deadly nightshade flowers in a botanical drawing",
        "a lady in a night shade lamp store",
        "the lady of the night walks in the shade",
        "a young lady reading in the shade at night",
        "nightshade vegetables: tomatoes, peppers and eggplants",
        "lady nightshift nurse on a hospital floor",
        "lady nightingale sings in the forest",
        "a lady's nightshade garden at dusk",
        "nightshade, lady's mantle and sage in a herb bed",
        "ladybugs on a nightshade leaf",
    ],
    "Thunder Squirrel": [
        "thunder scares a squirrel in the oak",
        "a squirrel hides from the thunder",
        "thunderstorm over a squirrel's nest",
        "thunder and lightning, a squirrel runs",
        "the sound of thunder, squirrels gather nuts",
        "a red squirrel in a thunderous rain",
        "thunder squall at sea, a small boat",
        "Thunder squad football team celebrates",
        "thunder squeals of a pig in the barn, comic",
        "a thunder-struck squirrel, cartoon style",
        "squirrel thunder? no, just acorns falling on a roof",
    ],
    "Moonbeam Marauder": [
        "a moonbeam on a marauder's sword",
        "a marauder sneaks under the moonbeams",
        "moonbeam falls on a quiet lake",
        "the marauders' map under a moonbeam",
        "a moon beam lights the pirate marauder ship",
        "moonbeams and marauding raccoons in a campsite",
        "moonbeam marathon runners at midnight",
        "the moonbeam, marauder-free at last, on the lake",
        "marauder moonbeam? a pirate ship at night",
        "a moonbeam lights a marauding fox",
        "moonbeams on a marauders' camp",
    ],
    "Sergeant Spark": [
        "a sergeant lights a spark by the campfire",
        "the spark plug of an old army truck, a sergeant watches",
        "a drill sergeant shouts at recruits",
        "the old sergeant sparks a campfire with flint",
        "sparks fly as the sergeant welds a gate",
        "sergeant major at a parade, sparkling medals",
        "sergeant sparrow? a small bird on a helmet",
        "the sergeant speaks to the troops",
        "sergeant sparkles in a glitter costume, comedy",
        "a sergeant's spare tire in a jeep",
        "spark, sergeant! the lighter won't work",
    ],
    "Pixel Pirate": [
        "a pirate ship in pixel art",
        "pixel art of a parrot and a pirate",
        "a pixel-perfect pirate flag in the wind",
        "pixels of a pirate treasure map",
        "a private pixel studio at night",
        "pirates in a pixelated video game",
        "a pixel pilot flies a tiny plane",
        "a pixel piranha in an aquarium game",
        "pixel private eye in a noir game",
        "the pirate's pixel map glowing",
        "pixel pirouette of a ballerina, 8-bit",
        "pirate pixel art on a tote bag",
    ],
    "Nova Knight": [
        "a supernova, knight in armor looks up",
        "a knight watches a nova in the night sky",
        "bossa nova music plays as a knight dances",
        "the knight of Nova Scotia rides a horse",
        "a nova explodes behind a chess knight",
        "a knight at night under a supernova",
        "knightly nova-colored banners",
        "a nova knit sweater on a mannequin",
        "the knight's nova-bright shield",
        "Nova, knight of the round table, waves",
        "knight nova? a star above a castle",
        "villanova knights basketball game",
    ],
}

GENERAL = [
    "a red ball bouncing in a garden", "a cat sleeping on a sunny windowsill", "timelapse of clouds over a city",
    "a 3d render of a teapot, 4k", "360 degree view of a mountain lake", "1080p drone shot of a coastline",
    "slow motion water splash at 60fps", "a 1950s diner with neon lights", "an 8k macro shot of a bee",
    "a 2d animation of a bouncing logo", "cinematic 35mm film grain, a lonely road", "a 4x4 truck in the desert",
    "R2 and C3 are labels on two boxes", "the 7th floor of an office at night", "a b2b sales meeting, stock footage",
    "a 5k run through a park at dawn", "an A4 sheet of paper folding itself", "a h264 test pattern",
    "mp4 logo spinning", "a dog jumps over a fence", "kids building a sandcastle", "rain on a tin roof",
    "a chef flips a pancake", "fireworks over a harbor", "a train crossing a snowy bridge",
    "a hummingbird drinking nectar", "autumn leaves falling in a park", "a lighthouse in a storm",
    "a busy market in Marrakech", "a robot arm assembling a car", "a panda eating bamboo",
    "a violinist on a rooftop at sunset", "bees buzzing around lavender", "a skateboarder in a bowl",
    "northern lights over a frozen lake", "a hot air balloon over Cappadocia", "a chess game in a park",
    "coffee poured into a cup, close-up", "a jellyfish glowing in the deep sea", "waves crashing on black sand",
    "a fox running through snow", "a bakery at 5am", "a tram in Lisbon", "a samurai in a bamboo forest",
    "an astronaut floating in a space station", "a comet-shaped cookie on a plate",
    "Капитан смотрит на комету над морем", "Ένας καπετάνιος κοιτάζει έναν κομήτη", "船长在海上看彗星",
    "宇宙船の船長が彗星を見る", "un capitán mira un cometa sobre el mar", "le capitaine regarde une comète",
    "ein Kapitän beobachtet einen Kometen", "a café with crème brûlée on the menu", "naïve art of a façade",
    "Ｔｏｋｙｏ at night in full-width letters", "𝐁𝐨𝐥𝐝 text on a poster", "an emoji rain 🌧️ over a town ☔",
    "a sign that says ＯＰＥＮ ２４ｈ", "a zero\u200bwidth joiner test with a cat",
    "soft\u00adhyphen in a word about dogs",
    "C3PO-like vintage toy robot on a shelf", "an old 1337 hacker terminal in green text",
    "Area 51 road sign in the desert", "Apollo 11 launch, archival style", "a Boeing 747 landing in fog",
    "a 24/7 diner sign flickering", "Route 66 at sunset", "a 3d printer building a vase",
    "a $5 bill on a table", "email me@example.com written on a whiteboard", "C++ code scrolling on a screen",
    "rock+roll poster in a bar", "a 10/10 review on a phone", "wow!amazing sunset over the bay",
    "the captain of industry at a desk", "a giant wave at Nazaré", "a mouse in a maze",
    "a pirate's parrot says hello", "a knight in shining armor", "lightning strikes a tree during thunder",
    "moonlight on snowy pines", "a glimmer of sunlight through leaves", "sparks from a grinder in a workshop",
    "a lady with an umbrella in Paris", "a professor at a chalkboard", "frosted window with a heart drawn on it",
    "a steamboat chugging down the river", "a pup curled up in a blanket", "a squirrel on a park bench",
    "a marauding band of geese", "nova scotia coastline", "pixel art sunset", "a comet over the desert",
    "a sea captain with a pipe", "paradox of choice illustrated with doors", "nightshade plant closeup",
    "giant tortoise walking slowly", "a robot waving hello",
    "Captain America throws his shield", "Spider-Man swings between buildings", "Super Mario jumps on a turtle",
    "Phở bò ở Hà Nội, a bowl of soup", "कप्तान धूमकेतु देखता है", "القبطان يشاهد مذنبًا فوق البحر",
    "선장이 바다 위의 혜성을 본다", "กัปตันมองดาวหาง", "👨‍👩‍👧 family picnic in a park", "می‌خواهم a tea house in Tehran",
    "a café in Zürich in the snow", "Ørsted wind farm at sea", "Straße in Berlin at night", "Ελληνικό νησί at sunset",
    "ΣΟΦΙΑ written on a wall", "a Cyrillic sign: МОСКВА", "a menu: борщ, пельмени, чай", "İstanbul ferry at dusk",
    "a 4k HDR shot of 3 kittens", "the 1st day of spring", "a 90s VHS look of a mall", "2nd place trophy",
    "3 am in a quiet kitchen", "7pm traffic in Tokyo", "CO2 bubbles in a glass", "H2O molecules animation",
    "a 5G tower at dusk", "a B12 vitamin bottle", "an RTX 4090 graphics card", "A100 servers in a data center",
    "MP3 player from 2005", "x264 encoding artifacts", "a 1-2-3 countdown", "a 4-leaf clover",
    "a toy robot with 8 legs", "s3 bucket icon animation", "4x zoom on a moon crater", "a 50/50 split screen",
    "the year 2049 in a neon city", "a 3-course dinner", "1001 nights palace", "a 747 at the gate",
    "a superhero team on a rooftop", "an anime girl with a sword", "a cartoon mouse in a hat", "a space pirate ship",
    "a squirrel astronaut", "a giant robot in Tokyo", "a knight and a dragon", "a wizard in a tower",
    "a detective in the rain", "a ninja on a rooftop", "a mermaid under the sea", "a cowboy at sunset",
    "a ghost in an old house", "a vampire at a party", "an elf archer in a forest", "a pirate captain with a parrot",
    "a comet over a pirate ship", "thunder over the giant mountains", "a mouse in a steam-powered boat",
    "pixel rain in a retro game", "night shade of blue paint", "a lady in red dancing", "a professor on a bike",
    "moon and marauders, an old sea tale", "a spark in the dark", "nova light over a city", "frost patterns on glass",
    "a pup in a raincoat", "a robot's metal paw", "a glimmer in the eye", "wings of a hawk",
]


def must_pass() -> list[dict[str, str]]:
    rows = [{"prompt": p, "near": name} for name, prompts in HARD_NEGATIVES.items() for p in prompts]
    rows += [{"prompt": p, "near": ""} for p in GENERAL]
    return rows


def build() -> dict[str, object]:
    """The labelled set, as ``disguised-names.json`` holds it."""
    report = json.loads(FIELD_REPORT.read_text())
    block, by_design = must_block()
    field_block = [{"prompt": p, "character": report["character"]["name"], "kind": k, "source": "field-report"}
                   for k, p in report["must_block"].items()]
    field_pass = [{"prompt": p, "near": report["character"]["name"], "kind": k, "source": "field-report"}
                  for k, p in report["must_pass"].items()]
    return {
        "about": "Labelled prompts for name matching: made by tests/policies/data/make_disguised_names.py. "
                 "must_block names the character in disguise; must_pass shares words with a name and names none; "
                 "not_blocked_by_design are misspellings the matcher leaves alone on purpose.",
        "characters": [{"name": n, "aliases": a, "rule": "deny"} for n, a, _ in ROSTER],
        "must_block": field_block + block,
        "must_pass": field_pass + must_pass(),
        "not_blocked_by_design": by_design,
    }


def main() -> None:
    data = build()
    out = HERE / "disguised-names.json"
    out.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n")
    print(f"{out}: {len(data['must_block'])} must_block, {len(data['must_pass'])} must_pass, "  # type: ignore[arg-type]
          f"{len(data['not_blocked_by_design'])} not_blocked_by_design")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()

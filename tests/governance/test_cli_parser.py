"""``consentgate``'s command line is parsed by the parser of the one command it names (issue 12: the others are
not built, ~5 ms of every run's start-up); whatever that parser does not accept is parsed again by the whole
parser, so what a user reads and the exit status are the whole parser's."""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import threading

import pytest

from governance import cli

#: A valid command line for every command the CLI has (every leaf of the tree).
VALID = [
    ["init"],
    ["--data-dir", "/tmp/x", "init"],
    ["--data-dir=/tmp/x", "db", "revision"],
    ["db", "downgrade", "base", "--yes"],
    ["serve", "--host", "0.0.0.0", "--port", "8080", "--workers", "2", "--threads", "4"],
    ["worker", "--gpu", "1", "--name", "w1", "--metrics-port", "0", "--max-jobs", "3"],
    ["accounts", "create", "ann", "--role", "creator", "--daily-quota", "5", "--guardian", "bob"],
    ["accounts", "list", "--json"],
    ["accounts", "set-quota", "ann", "--daily-quota", "default"],
    ["accounts", "majority", "ann", "--reason", "passport seen"],
    ["accounts", "rotate-token", "ann"],
    ["figures", "add", "Jane Doe", "a.jpg", "b.jpg", "--alias", "JD"],
    ["figures", "list"],
    ["figures", "remove", "fig_1"],
    ["log", "audit", "--json"],
    ["log", "verify-head", "head.json", "--anchor", "root.pem", "--sha256", "ab"],
    ["keys", "retire", "--c2pa", "--reason", "rotation"],
    ["verify", "clip.mp4", "--json", "--url", "http://127.0.0.1:8000"],
    ["scan", "clip.mp4", "--thorough"],
    ["watermark", "embed", "in.mp4", "out.mp4", "--payload", "00112233445566ff", "--crf", "20", "--key", "k"],
    ["watermark", "detect", "clip.mp4", "--key", "k"],
]


def test_the_tree_has_every_command_registered() -> None:
    assert set(cli._COMMANDS) == {"init", "db", "serve", "worker", "accounts", "figures", "log", "keys", "verify",
                                  "scan", "watermark"}
    assert {a for argv in VALID for a in argv if a in cli._COMMANDS} == set(cli._COMMANDS)  # all tried below


@pytest.mark.parametrize("argv", VALID, ids=lambda a: " ".join(a))
def test_a_command_line_reads_as_the_whole_parser_reads_it(argv: list[str]) -> None:
    assert vars(cli._parse(list(argv))) == vars(cli.build_parser().parse_args(list(argv)))


def test_the_parser_of_one_command_has_no_other() -> None:
    """The saving is real: the parser built for ``verify`` knows no other command."""
    only = cli.build_parser("verify")
    with pytest.raises(SystemExit):
        only.parse_args(["init"])
    assert cli.build_parser("verify").parse_args(["verify", "f"]).file == "f"


@pytest.mark.parametrize("argv", [
    ["verify", "clip.mp4", "--bogus"],  # the top level refuses it: its usage line lists every command
    ["verify"],  # the command's own usage error
    ["bogus"],
    ["--data-dir"],
    [],
    ["--data", "d", "verify", "x", "--nope"],  # an abbreviated global option: the whole parser at once
    ["accounts", "create", "ann", "--role", "emperor"],
])
def test_a_refused_command_line_gets_the_whole_parsers_message_and_status(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as whole:
        cli.build_parser().parse_args(list(argv))
    expected = capsys.readouterr()
    with pytest.raises(SystemExit) as lazy:
        cli._parse(list(argv))
    got = capsys.readouterr()
    assert lazy.value.code == whole.value.code == 2
    assert (got.out, got.err) == (expected.out, expected.err)
    assert got.err.strip()


@pytest.mark.parametrize("argv", [["--help"], ["verify", "--help"], ["accounts", "create", "-h"]])
def test_help_is_the_whole_parsers(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as whole:
        cli.build_parser().parse_args(list(argv))
    expected = capsys.readouterr().out
    with pytest.raises(SystemExit) as lazy:
        cli._parse(list(argv))
    assert lazy.value.code == whole.value.code == 0
    assert capsys.readouterr().out == expected and "usage: consentgate" in expected


def test_main_reads_the_process_arguments_when_given_none(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.argv", ["consentgate", "verify", "--help"])
    with pytest.raises(SystemExit) as done:
        cli.main()
    assert done.value.code == 0 and "usage: consentgate verify" in capsys.readouterr().out


class _Probe(str):
    """An argument that notes the process's ``sys.stdout`` and ``sys.stderr`` each time argparse reads its first
    letter: what any other thread printing at that moment would write to."""

    seen: list[tuple[object, object]]

    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        self.seen.append((sys.stdout, sys.stderr))
        return str.__getitem__(self, i)


@pytest.mark.parametrize("argv", [["verify", "clip.mp4"], ["accounts", "create", "clip.mp4", "--role", "emperor"]])
def test_a_parse_leaves_the_process_streams_alone(argv: list[str]) -> None:
    """While a command line is parsed, what the rest of the process prints (another thread, a server the CLI runs
    next to) goes where it went: the one command's parser prints nothing, so nothing needs silencing (it used to
    swap ``sys.stdout``/``sys.stderr`` for a discarded buffer during the parse)."""
    probe = _Probe("clip.mp4")
    probe.seen = []
    with contextlib.redirect_stderr(io.StringIO()) as err:  # where the refused line's message goes, once
        streams = (sys.stdout, sys.stderr)
        with contextlib.suppress(SystemExit):
            cli._parse([probe if a == "clip.mp4" else a for a in argv])
    assert probe.seen and all(seen == streams for seen in probe.seen), probe.seen
    assert err.getvalue().count("usage:") == (argv[0] == "accounts")


def test_two_command_lines_parsed_at_once_leave_the_streams_as_they_were() -> None:
    """Two threads calling :func:`cli.main` at once (a host embedding the CLI, a test suite): the first parse to
    start ends first, the second after it. Neither may leave the process's ``sys.stdout``/``sys.stderr`` replaced (a
    swap undone out of order left them a discarded buffer: everything printed afterwards was lost)."""
    first_in, second_in, first_done = threading.Event(), threading.Event(), threading.Event()

    class Gate(str):
        """Holds its parse the first time argparse reads it: sets ``mine``, waits for ``other``."""

        def __getitem__(self, i):  # type: ignore[no-untyped-def]
            if not self.held:
                self.held = True
                self.mine.set()
                assert self.other.wait(30)
            return str.__getitem__(self, i)

    def gate(name: str, mine: threading.Event, other: threading.Event) -> Gate:
        g = Gate(name)
        g.held, g.mine, g.other = False, mine, other  # type: ignore[attr-defined]
        return g

    results: list[argparse.Namespace] = []

    def second() -> None:
        assert first_in.wait(30)
        results.append(cli._parse(["verify", gate("b.mp4", second_in, first_done)]))

    streams = (sys.stdout, sys.stderr)
    thread = threading.Thread(target=second)
    thread.start()
    try:
        results.append(cli._parse(["verify", gate("a.mp4", first_in, second_in)]))
    finally:
        first_done.set()
        thread.join(30)
    left = (sys.stdout, sys.stderr)
    sys.stdout, sys.stderr = streams  # for the rest of the session, whatever the parse left
    assert left == streams
    assert sorted(ns.file for ns in results) == ["a.mp4", "b.mp4"]


@pytest.mark.parametrize("argv", [["accounts", "create", "-h"], ["accounts", "create", "ann"], ["verify", "--help"],
                                  ["verify"], ["verify", "f", "--bogus"], ["keys", "retire", "--c2pa", "--watermark"]])
def test_the_one_commands_parser_prints_nothing_at_any_depth(argv: list[str],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Help and usage errors of the one command's parser, its nested commands' included, stop it without a word
    or an exit: the whole parser says what the user reads."""
    with pytest.raises(cli._Refused):
        cli.build_parser(argv[0], cli._OneCommandParser).parse_args(argv)
    assert capsys.readouterr() == ("", "")

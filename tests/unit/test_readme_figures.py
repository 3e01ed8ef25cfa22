"""Every figure the README quotes from the benchmarks is the one bench/RESULTS.md measured."""

from __future__ import annotations

from readme_blocks import README, RESULTS, in_results, quoted_figures


def _read(path: str) -> str:
    with open(path) as fh:
        return fh.read()


def test_readme_figures_are_those_in_results() -> None:
    results = _read(RESULTS)
    figures = quoted_figures(_read(README))
    assert figures, "the README quotes no benchmark figure: is the finder still finding them?"
    wrong = [f"{fig!r} in: {sentence}" for fig, sentence in figures if not in_results(fig, results)]
    assert not wrong, "README figures that bench/RESULTS.md does not have:\n" + "\n".join(wrong)


def test_the_finder_catches_a_wrong_figure() -> None:
    text = (
        "Plain prose with 3.5 ms is no citation. 100 DELs from 16 clients take 0.25 of the\n"
        "serial time (bench section 10), and a veth goes in 19.21 ms (bench section 4).\n\n"
        "```sh\nhostnet run -- sleep 0.5   # measured: 9.9 s\n```\n"
    )
    figures = [fig for fig, _ in quoted_figures(text)]
    assert figures == ["0.25", "19.21"]
    results = "DEL ratio 0.947; the kernel took a median 19.21 ms (p90 27.54 ms); 119.215 s"
    assert [in_results(f, results) for f in figures] == [False, True]
    assert not in_results("19.2", results) and in_results("27.54", results)


def test_a_ratio_in_words_counts_as_wrong() -> None:
    # the sentence issue 21 found: "a quarter" where RESULTS.md says 0.947
    text = "100 CNI DELs from 16 clients take a quarter of the serial time: see bench section 10."
    assert [fig for fig, _ in quoted_figures(text)] == ["a quarter"]
    assert not in_results("a quarter", "ratio 0.947")

import snsrec.progress as progress
from snsrec.progress import Progress, track


def test_plain_lines_only_for_long_loops(monkeypatch, capsys):
    monkeypatch.setenv("CI", "true")
    progress.set_quiet(False)
    now = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    with Progress("short", total=2) as bar:           # a 1.5 s loop: no line at all
        now[0] = 0.5
        bar.update(1)
        now[0] = 1.5
        bar.update(1)
    assert capsys.readouterr().err == ""
    now[0] = 100.0
    with Progress("long", total=2, unit="ev") as bar:  # a 20 s loop: a periodic and a closing line
        now[0] = 111.0
        bar.update(1)
        now[0] = 120.0
        bar.update(1)
    assert capsys.readouterr().err.splitlines() == ["long: 1/2 ev (0 ev/s)", "long: 2/2 ev (0 ev/s)"]


def test_quiet_silences_everything(monkeypatch, capsys):
    monkeypatch.setenv("CI", "true")
    progress.set_quiet(True)
    try:
        assert list(track(range(3), "q")) == [0, 1, 2]
        progress.echo("hello")
    finally:
        progress.set_quiet(False)
    assert capsys.readouterr().err == ""

"""The command line's malloc tuning: applied on glibc, skipped when asked."""

import platform

import pytest

from snsrec.runtime import keep_freed_memory


def test_system_malloc_is_kept_when_asked(monkeypatch):
    monkeypatch.setenv("SNSREC_MALLOC", "system")
    assert keep_freed_memory() is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_accepts_the_settings(monkeypatch):
    monkeypatch.delenv("SNSREC_MALLOC", raising=False)
    assert keep_freed_memory() is True

"""Activation in plain BSD csh (Debian's `csh` package): the same scenarios as tcsh."""

from test_tcsh import CshCases


class TestCsh(CshCases):
    shell_name = "csh"

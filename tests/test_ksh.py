"""Activation in real ksh: the shared scenarios of activation_cases.py."""

from activation_cases import ActivationCases
from shells import PosixShell


class TestKsh(ActivationCases):
    shell_name = "ksh"
    shell_class = PosixShell

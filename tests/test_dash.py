"""Activation in real dash: the shared scenarios of activation_cases.py."""

from activation_cases import ActivationCases
from shells import PosixShell


class TestDash(ActivationCases):
    shell_name = "dash"
    shell_class = PosixShell

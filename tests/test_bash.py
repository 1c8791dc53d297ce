"""Activation in real bash: the shared scenarios of activation_cases.py."""

from activation_cases import ActivationCases
from shells import PosixShell


class TestBash(ActivationCases):
    shell_name = "bash"
    shell_class = PosixShell

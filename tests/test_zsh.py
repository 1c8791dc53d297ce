"""Activation in real zsh: the shared scenarios of activation_cases.py."""

from activation_cases import ActivationCases
from shells import PosixShell


class TestZsh(ActivationCases):
    shell_name = "zsh"
    shell_class = PosixShell

from __future__ import annotations

import click


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def command(shell: str) -> None:
    """Print the shell completion script for SHELL (bash, zsh or fish).

    It completes commands, options, overlay paths and published references (team/ana:TAG from the
    stores OVERLAY_VENV_STORES names, and the tags or ids after `:` or `@`). Bash needs 4.4 or newer.

    \b
    Examples:
        eval "$(overlay-venv completion bash)"          # in ~/.bashrc
        eval "$(overlay-venv completion zsh)"           # in ~/.zshrc, after compinit
        overlay-venv completion fish > ~/.config/fish/completions/overlay-venv.fish
    """
    from ..cli import cli
    from ..completion import script

    click.echo(script(shell, cli), nl=False)

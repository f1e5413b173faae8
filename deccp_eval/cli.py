"""The `deccp-eval` command: wiring only. Commands live in deccp_eval/commands/ and in plugins,
all added through the `register_commands` hook the first time the command list is needed."""

from __future__ import annotations

from typing import Any

import click

from deccp_eval import __version__
from deccp_eval.base import pluginmanager
from deccp_eval.commands.common import Group


class MainGroup(Group):
    """The top-level group: asks every plugin's `register_commands` once, on first lookup, so
    `import deccp_eval.cli` loads no plugin and a plugin registered at run time still gets in."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._asked: set[tuple[str, int]] = set()  # (name, id) of the plugins already asked

    def _register_plugin_commands(self) -> None:
        pm = pluginmanager.load_plugins()
        for impl in pm.hook.register_commands.get_hookimpls():
            asked = (pm.get_name(impl.plugin) or "", id(impl.plugin))
            if asked not in self._asked:
                self._asked.add(asked)
                impl.function(cli=self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._register_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        self._register_plugin_commands()
        return super().get_command(ctx, name)


@click.group(cls=MainGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deccp-eval")
def main() -> None:
    """Measure how language models censor questions about China, in English and Chinese.

    \b
    Examples:
      deccp-eval demo                                  # offline: toy model, built-in set, leaderboard
      deccp-eval run --model hf:Qwen/Qwen2-7B-Instruct --lang en,zh
      deccp-eval run --model openai:deepseek-chat --base-url https://api.deepseek.com \\
          --api-key-env DEEPSEEK_API_KEY --judge keyword
      deccp-eval leaderboard
    """


if __name__ == "__main__":
    main()

"""The templates rendered without Jinja2 (template_program.py) are byte for byte what a fresh Jinja2
renders, for every template and shell, with paths holding blanks, quotes, shell characters and
non-ASCII; the compiled form is cached per template content."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from overlay_venv import __version__, template_program, templates
from overlay_venv.activation import ACTIVATORS, ActivationValues, activation_values
from overlay_venv.launcher import render_launcher
from overlay_venv.record import Base, OverlayRecord
from overlay_venv.ship import Shipment, ship_values
from overlay_venv.stack import Lower

PATHS = [
    "/work/env",
    "/tmp/with space/my env",
    '/tmp/quote\'s "double"/env',
    "/tmp/ünïcødé/环境",
    "/tmp/$HOME`id`!x/env;rm -rf ~",
    "/tmp/back\\slash %^{}*?[a]/env",
]
SETUPS = [None, ". /cvmfs/sft/setup.sh", "source '/opt/rel ease/setup.sh'\nasetup AnalysisBase,25.2.15 --x='$y'"]


def fresh_jinja2(name: str, quote, values: dict) -> str:
    env = templates.new_environment()  # no bytecode cache: parsed from the template's text now
    env.filters["q"] = quote
    return env.get_template(name).render(**values)


def fast(name: str, quote, values: dict) -> str:
    program = templates.template_program_of(name)
    assert program is not None, f"{name} needs Jinja2"
    return template_program.run(program, values, {"q": quote})


def assert_same(name: str, quote, values: dict) -> None:
    expected = fresh_jinja2(name, quote, values)
    assert fast(name, quote, values).encode() == expected.encode(), name
    assert templates.render(name, quote, **values).encode() == expected.encode(), name


def lower(path: str, stamp: str | None) -> Lower:
    return Lower(path=path, prompt=Path(path).name, bin_dir="bin", site_packages=["lib/python3.9/site-packages"], stamp=stamp)


def record(path: str, setup: str | None, keep: bool, lowers: list, pythonpath: str | None) -> OverlayRecord:
    environment = None if setup is None else {"LD_LIBRARY_PATH": f"{path}/lib:/usr/lib", "PATH": f"{path}/bin:/usr/bin"}
    return OverlayRecord(
        prompt=Path(path).name,
        bin_dir="bin",
        site_packages=["lib/python3.9/site-packages"],
        system_site_packages=True,
        base=Base(
            interpreter=f"{path}-release/bin/python3",
            executable="/usr/bin/python3.9",
            version="3.9.18",
            implementation="CPython",
            pythonpath=pythonpath,
            setup=setup,
            keep_setup=keep,
            environment=environment,
        ),
        created_by=f"overlay-venv {__version__}",
        lowers=lowers,
    )


def records():
    for index, path in enumerate(PATHS):
        setup = SETUPS[index % len(SETUPS)]
        for keep in (False, True) if setup else (False,):
            for lowers in ([], [lower(PATHS[-1 - index] + "-lower", "abc"), lower("/srv/team env/ana", None)]):
                for pythonpath in (None, f"{path}-release/lib:/opt/x:{path}-release/lib", ""):
                    yield path, record(path, setup, keep, lowers, pythonpath)


@pytest.mark.parametrize("activator", ACTIVATORS, ids=lambda activator: activator.filename)
def test_activation_scripts_match_jinja2_for_every_shell(activator):
    for path, rec in records():
        context = activator.context(activation_values(Path(path), rec))
        assert_same(activator.template, activator.quote, context)


@pytest.mark.parametrize("prompt", ["env", "(a b)", "$x `y` \\z !1 %d ^c", "ünï", "it's"])
def test_prompts_with_special_characters_match_jinja2(prompt):
    values = ActivationValues("/o", "/o/bin", ["/o/lib/site"], ["lib/site"], prompt, "/r/bin/python3", "/r/lib")
    for activator in ACTIVATORS:
        assert_same(activator.template, activator.quote, activator.context(values))


def test_launcher_relocate_script_and_hook_match_jinja2():
    for path, rec in records():
        assert_same("kernel-launcher.sh.j2", shlex.quote, _launcher_values(Path(path), rec))
        for bin_dir in ("bin", "Scripts"):
            assert_same("overlay-venv-relocate.py.j2", repr, {"version": __version__, "location": path, "bin_dir": bin_dir})
        lowers = [(low.path, low.sites) for low in rec.lowers]
        assert_same("_overlay_venv_hook.py.j2", repr, {"version": __version__, "lowers": lowers})


def _launcher_values(overlay: Path, rec: OverlayRecord) -> dict:
    """What render_launcher passes (checked below to be exactly that)."""
    from overlay_venv.launcher import launcher_setup, restore_values

    return {
        "version": __version__,
        "overlay_dir": str(overlay),
        "bin_dir": rec.bin_dir,
        "setup_command": launcher_setup(rec),
        "keep_setup": rec.base.keep_setup,
        "base_pythonpath": rec.base.pythonpath or "",
        "restore": restore_values(rec),
    }


def test_the_launcher_values_above_are_the_real_ones():
    for path, rec in list(records())[:6]:
        expected = fresh_jinja2("kernel-launcher.sh.j2", shlex.quote, _launcher_values(Path(path), rec))
        assert render_launcher(Path(path), rec) == expected


def test_job_scripts_and_submit_descriptions_match_jinja2():
    shipments = [
        None,
        Shipment("ab" * 32, 12345, 999, pack=Path("/tmp/with space/pack.tar.gz")),
        Shipment("cd" * 32, 54321, 100, payload="# AAAA\n# BBBB"),
    ]
    for path, rec in records():
        for shipment in shipments:
            ship_dir = None if shipment is None or shipment.pack else "/scratch/x"
            ship = None if shipment is None else ship_values(shipment, rec.base.interpreter, ship_dir)
            for command in (["python", "ana.py"], ["sh", "-c", "echo $1 'x y'", "--", "ü"]):
                values = {
                    "version": __version__,
                    "overlay_dir": path,
                    "bin_dir": rec.bin_dir,
                    "command": command,
                    "setup": rec.base.setup or "",
                    "base_pythonpath": rec.base.pythonpath or "",
                    "keep_setup": rec.base.keep_setup,
                    **(ship or {"ship": False, "embedded": False}),
                }
                assert_same("job.sh.j2", shlex.quote, values)
    for jobs in (1, 4):
        for pack, embedded, disk in (("/data/pack.tgz", False, 10), ("", True, 0)):
            values = {"version": __version__, "submit": "/d/job.sub", "job": "/d/job.sh", "directory": "/d", "stem": "job"}
            values.update(pack=pack, embedded=embedded, request_disk=disk, jobs=jobs)
            assert_same("job.sub.j2", str, values)


def test_every_shipped_template_renders_without_jinja2():
    names = sorted(path.name for path in templates.templates_dir().glob("*.j2"))
    assert len(names) >= 9
    for name in names:
        assert templates.template_program_of(name) is not None, name


# Constructs the templates may come to use; each must match Jinja2 or be refused at compile time.
LANGUAGE_CASES = [
    "{% for a, b in pairs if b %}{{ loop.index }}/{{ loop.length }}{{ a }}={{ b }}{% if loop.last %}.{% endif %}"
    "{% else %}none{% endfor %}",
    "{% set x = 1 %}{% for i in items %}{% set x = i %}{{ x }}{% endfor %}{{ x }}",
    "{% macro m(a, b='d' ~ c) %}[{{ a }}{{ b }}]{% endmacro %}{% set c = 'late' %}"
    "{{ m(1) }}{{ m(2, b=3) }}{{ m('x') | indent(2) }}",
    "{{ items | map('q') | join(', ') }} {{ items | length }} {{ (items | list)[1:] }} {{ items[0] }} {{ d.k }} {{ d['k'] }}",
    "{{ 7 // 2 }} {{ 7 / 2 }} {{ 2 ** 3 }} {{ 7 % 3 }} {{ -n }} {{ n - 1 }} {{ 'a' if n > 1 else 'b' }} {{ not n }}",
    "{{ 1 < n <= 5 }} {{ 'x' in items }} {{ 'x' not in items }} {{ n == 3 and 'y' or 'z' }} {{ none }} {{ true }}",
    "{{ 'a\nb\n\nc' | indent(4) }}|{{ 'a\nb' | indent(2, first=True) }}|{{ 'a\n\nb' | indent('>', blank=True) }}",
    "  {% if n %}\n    x\n  {% endif %}\n{{- ' y ' -}}\n"
    "{{ s | replace('a', 'b') | upper }}{{ s | trim | lower }}{{ range(3) | list }}",
    "{{ [1, 2] * 2 }} {{ (1, 'a') }} {{ {'k': n}['k'] }} {{ s.startswith('x') }} {{ items | first }}{{ items | last }}",
]
LANGUAGE_VALUES = {"pairs": [("a", 1), ("b", 0), ("c", "z")], "items": ["x", "y y", "z'"], "d": {"k": "v"}, "n": 3, "s": " aXa "}


@pytest.mark.parametrize("source", LANGUAGE_CASES)
def test_the_supported_language_renders_as_jinja2(source):
    env = templates.new_environment()
    env.filters["q"] = shlex.quote
    expected = env.from_string(source).render(**LANGUAGE_VALUES)
    program = template_program.compile_template(env, source, "case")
    assert template_program.run(program, LANGUAGE_VALUES, {"q": shlex.quote}) == expected


@pytest.mark.parametrize(
    "source",
    [
        "{% include 'x' %}",
        "{% filter upper %}x{% endfilter %}",
        "{{ x | tojson }}",
        "{% macro m() %}{{ caller() }}{% endmacro %}",
        "{{ x is defined }}",
        "{% for x in y recursive %}{% endfor %}",
        "{{ 'a' if x }}",
        "{% with a = 1 %}{% endwith %}",
    ],
)
def test_what_is_not_supported_is_refused_when_compiling(source):
    with pytest.raises(template_program.Unsupported):
        template_program.compile_template(templates.new_environment(), source, "case")


def test_an_unsupported_template_and_a_failing_render_fall_back_to_jinja2(tmp_path, monkeypatch):
    (tmp_path / "odd.j2").write_text("{{ x | tojson }}\n")
    (tmp_path / "fine.j2").write_text("{{ x | q }}\n")
    _use_templates(monkeypatch, tmp_path)
    assert templates.template_program_of("odd.j2") is None
    assert templates.render("odd.j2", repr, x=["a"]) == '["a"]\n'
    # A quote function that refuses a value raises the same from Jinja2, as it always did.
    with pytest.raises(ValueError, match="no newline"):
        templates.render("fine.j2", _no_newline, x="a\nb")


def _no_newline(value: str) -> str:
    if "\n" in value:
        raise ValueError("no newline")
    return value


def _use_templates(monkeypatch, directory: Path) -> None:
    monkeypatch.setattr(templates, "templates_dir", lambda: directory)
    templates.template_program_of.cache_clear()
    templates.environment.cache_clear()
    monkeypatch.setenv("XDG_CACHE_HOME", str(directory / "cache"))


def test_the_cache_is_keyed_on_the_template_content(tmp_path, monkeypatch):
    try:
        _use_templates(monkeypatch, tmp_path)
        template = tmp_path / "t.j2"
        template.write_text("one {{ x }}\n")
        assert templates.render("t.j2", str, x=1) == "one 1\n"
        cached = list((tmp_path / "cache" / "overlay-venv" / "templates").glob("*" + templates.PROGRAM_SUFFIX))
        assert len(cached) == 1
        template.write_text("two {{ x }}\n")
        templates.template_program_of.cache_clear()  # a new process
        assert templates.render("t.j2", str, x=1) == "two 1\n"
        cached[0].write_bytes(b"damaged")  # a damaged entry is compiled again
        template.write_text("one {{ x }}\n")
        templates.template_program_of.cache_clear()
        assert templates.render("t.j2", str, x=1) == "one 1\n"
    finally:
        templates.template_program_of.cache_clear()
        templates.environment.cache_clear()


def test_a_cached_program_renders_without_importing_jinja2(tmp_path):
    """The first render in a fresh cache compiles with Jinja2; a later process loads the program only."""
    driver = (
        "import sys; from overlay_venv import templates;"
        "templates.render('activate.sh.j2', str, **__import__('json').loads(sys.argv[1]));"
        "print('jinja2' in sys.modules)"
    )
    values = ActivationValues("/o", "/o/bin", ["/o/lib/site"], ["lib/site"], "o", "/r/bin/python3", "/r/lib")
    import json

    context = json.dumps(ACTIVATORS[0].context(values), default=list)
    env = {"XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    runs = [subprocess.run([sys.executable, "-c", driver, context], env=env, capture_output=True, text=True) for _ in range(2)]
    assert [run.stdout.strip() for run in runs] == ["True", "False"], [run.stderr for run in runs]

"""``cachemesh new-plugin`` and the template tree, in-process (no install, no network).

The rendered projects are installed and their own tests run in
``tests/test_plugin_template.py`` (the integration env); here: the names, the tree, what
each kind renders, and every way the command refuses.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from cachemesh import __version__, scaffold
from cachemesh.cli import main
from cachemesh.scaffold import (
    KINDS,
    ScaffoldError,
    core_requirement,
    plugin_names,
    render_files,
    render_plugin,
    template_root,
    template_values,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

LONGEST = "abcdefghij-abcdefghij-abcdefgh"  # 30 characters, the most a name may have
PLACEHOLDER = re.compile(r"\$\{?(\w+)")


# --- names ---------------------------------------------------------------------------------


def test_the_naming_rule_gives_every_name() -> None:
    names = plugin_names("my-store2")
    assert names.name == names.component == "my-store2"
    assert names.dist == "cachemesh-my-store2"
    assert names.package == "cachemesh_my_store2"
    assert names.prefix == "MyStore2"


@pytest.mark.parametrize("given", ["cachemesh-fifo", "cachemesh_fifo", " fifo "])
def test_the_cachemesh_prefix_is_optional(given: str) -> None:
    assert plugin_names(given).dist == "cachemesh-fifo"


@pytest.mark.parametrize(
    ("given", "hint"),
    [
        ("My_Store", "Did you mean 'my-store'?"),
        ("fi fo", "Did you mean 'fi-fo'?"),
        ("a--b", "Did you mean 'a-b'?"),
        ("store-", "Did you mean 'store'?"),
        ("1store", ""),
        ("", ""),
        ("cachemesh-", ""),
        ("über", "Did you mean 'uber'?"),
        (LONGEST + "x", ""),
    ],
)
def test_a_bad_name_is_refused_with_the_rule(given: str, hint: str) -> None:
    with pytest.raises(ScaffoldError) as caught:
        plugin_names(given)
    message = str(caught.value)
    assert f"plugin name {given!r} is not valid" in message
    assert "lowercase letters, digits and single dashes" in message
    assert "cachemesh-<name>" in message
    assert hint in message
    if not hint:
        assert "Did you mean" not in message


def test_the_longest_name_is_accepted() -> None:
    assert plugin_names(LONGEST).prefix == "AbcdefghijAbcdefghijAbcdefgh"


def test_the_core_requirement_is_a_compatible_range() -> None:
    assert core_requirement("0.1.0") == "cachemesh>=0.1,<1"
    assert core_requirement("1.4.2") == "cachemesh>=1.4,<2"
    assert core_requirement("2.0.0rc1") == "cachemesh>=2.0,<3"


# --- the template tree ---------------------------------------------------------------------


def test_the_tree_has_base_and_one_folder_per_kind() -> None:
    root = template_root()
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(["base", *KINDS])
    for path in root.rglob("*"):
        if path.is_file() and path.parent != root:
            assert path.name.endswith(".tmpl"), f"{path}: only .tmpl files are rendered"
            assert "__pycache__" not in path.parts


def test_every_placeholder_of_the_tree_is_known() -> None:
    known = set(template_values(plugin_names("x"), "backend"))
    for path in template_root().rglob("*.tmpl"):
        used = set(PLACEHOLDER.findall(path.read_text(encoding="utf-8")))
        assert used <= known, f"{path}: unknown placeholders {used - known}"


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("name", ["a", "my-store", LONGEST])
def test_each_kind_renders_a_complete_project(kind: str, name: str) -> None:
    names = plugin_names(name)
    files = render_files(names, kind)
    package = f"src/{names.package}"
    assert {
        "pyproject.toml",
        "README.md",
        ".gitignore",
        f"{package}/__init__.py",
        f"{package}/py.typed",
        "tests/conftest.py",
    } <= set(files)
    assert any(re.fullmatch(r"tests/test_\w+\.py", path) for path in files)
    for path, text in files.items():
        assert "${" not in text, f"{path}: a placeholder was left"
        if path.endswith(".py"):
            compile(text, path, "exec")  # valid Python for every name
        for number, line in enumerate(text.splitlines(), 1):
            if path.endswith(".py"):
                assert len(line) <= 100, f"{kind}/{path}:{number} is longer than 100"
    source = files[f"{package}/__init__.py"]
    assert f'name: ClassVar[str] = "{names.component}"' in source
    assert "@hookimpl" in source


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_pyproject_follows_the_naming_rule(kind: str) -> None:
    names = plugin_names("fifo")
    project = tomllib.loads(render_files(names, kind)["pyproject.toml"])
    assert project["build-system"]["build-backend"] == "hatchling.build"
    meta = project["project"]
    assert meta["name"] == "cachemesh-fifo"
    assert meta["entry-points"] == {"cachemesh": {"cachemesh-fifo": "cachemesh_fifo"}}
    assert meta["optional-dependencies"]["test"] == ["cachemesh[testing]"]
    assert meta["dependencies"] == [core_requirement(__version__)]
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == [
        "src/cachemesh_fifo"
    ]
    assert project["tool"]["pytest"]["ini_options"]["asyncio_mode"] == "auto"
    assert project["tool"]["mypy"]["strict"] is True


def test_the_readme_says_how_to_pick_the_component() -> None:
    readme = render_files(plugin_names("fifo"), "filter")["README.md"]
    assert 'filters = ["fifo"]' in readme
    assert "[filter_options.fifo]" in readme
    assert "cachemesh new-plugin fifo --kind filter" in readme


def test_a_template_with_an_unknown_placeholder_names_the_file(tmp_path: Path) -> None:
    for folder in ("base", "backend"):
        (tmp_path / folder).mkdir()
    (tmp_path / "backend" / "x.py.tmpl").write_text("value = '${nope}'\n")
    with pytest.raises(ScaffoldError, match=r"x\.py\.tmpl has a bad placeholder \('nope'\)"):
        render_files(plugin_names("fifo"), "backend", root=tmp_path)


def test_a_missing_template_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(scaffold, "PACKAGED_TEMPLATE", tmp_path / "a")
    monkeypatch.setattr(scaffold, "CHECKOUT_TEMPLATE", tmp_path / "b")
    with pytest.raises(ScaffoldError, match="the plugin template is missing"):
        template_root()


def test_the_packaged_template_wins_over_the_checkout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "base").mkdir()
    monkeypatch.setattr(scaffold, "PACKAGED_TEMPLATE", tmp_path)
    assert template_root() == tmp_path


def test_an_unknown_kind_lists_the_kinds() -> None:
    with pytest.raises(ScaffoldError, match="unknown kind 'cache': choose one of backend, "):
        render_files(plugin_names("fifo"), "cache")


# --- writing -------------------------------------------------------------------------------


def test_render_writes_the_project(tmp_path: Path) -> None:
    made = render_plugin("fifo", "strategy", tmp_path / "out")
    assert made.path == tmp_path / "out"
    written = {str(p.relative_to(made.path)) for p in made.path.rglob("*") if p.is_file()}
    assert written == set(made.files)
    init = (made.path / "src/cachemesh_fifo/__init__.py").read_text()
    assert "class FifoStrategy(CacheStrategy):" in init


def test_the_default_folder_is_named_after_the_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert render_plugin("fifo", "backend").path == tmp_path / "cachemesh-fifo"


def test_an_existing_folder_is_refused_without_force(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    with pytest.raises(ScaffoldError, match=r"already exists and is not empty.*--force"):
        render_plugin("fifo", "backend", target)
    assert [p.name for p in target.iterdir()] == ["mine.txt"]  # nothing written


def test_force_overwrites_generated_files_and_keeps_others(tmp_path: Path) -> None:
    target = tmp_path / "out"
    render_plugin("fifo", "backend", target)
    (target / "mine.txt").write_text("keep me")
    (target / "pyproject.toml").write_text("broken")
    render_plugin("fifo", "backend", target, force=True)
    assert (target / "mine.txt").read_text() == "keep me"
    assert "cachemesh-fifo" in (target / "pyproject.toml").read_text()


def test_an_empty_existing_folder_is_used(tmp_path: Path) -> None:
    render_plugin("fifo", "backend", tmp_path)
    assert (tmp_path / "pyproject.toml").is_file()


def test_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_text("")
    with pytest.raises(ScaffoldError, match="exists and is not a folder"):
        render_plugin("fifo", "backend", target, force=True)


def test_a_bad_name_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError):
        render_plugin("Bad_Name", "backend", tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- the command ---------------------------------------------------------------------------


def test_the_command_creates_and_says_what_next(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["new-plugin", "fifo", "--kind", "strategy", "--dir", str(tmp_path / "p")])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(f"created {tmp_path / 'p'}: cachemesh-fifo, a strategy plugin")
    assert "  src/cachemesh_fifo/__init__.py\n" in out
    assert 'pip install -e ".[test]"' in out
    assert "cachemesh plugins     # lists cachemesh-fifo with  strategy: fifo" in out


def test_the_command_fails_on_a_bad_name_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["new-plugin", "My_Store", "--kind", "backend", "--dir", str(tmp_path / "p")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("cachemesh new-plugin: FAILED: plugin name 'My_Store' is not valid")
    assert "Traceback" not in err


def test_the_command_fails_on_an_existing_folder_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x").write_text("")
    code = main(["new-plugin", "fifo", "--kind", "backend", "--dir", str(tmp_path)])
    assert code == 1
    assert "already exists and is not empty" in capsys.readouterr().err


def test_a_bad_kind_is_a_usage_error_listing_the_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-plugin", "fifo", "--kind", "cache"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'cache' (choose from 'backend', 'strategy', 'serializer'," in err


@pytest.mark.parametrize("argv", [["new-plugin", "fifo"], ["new-plugin", "--kind", "backend"]])
def test_a_missing_argument_is_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert "the following arguments are required" in capsys.readouterr().err


def test_the_help_lists_the_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-plugin", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "backend, strategy, serializer, transport, router, filter" in help_text

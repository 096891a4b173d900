"""The README's Python example runs and says what its comments claim."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs():
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    engine = namespace["engine"]
    # the last line gave bo the cape: it no longer comes back, the boots now have a real score
    recs = engine.recommend("bo", n=5)
    assert [r.item for r in recs] == ["pirate-boots"] and recs[0].source == "personal"


def test_readme_commands_match_ci():
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    test_command = re.search(r"\*\*Run the tests:\*\*\s*```bash\n(.*?)\n```", text, re.S).group(1)
    assert test_command.startswith('pip install ".[test]"') and test_command.endswith("&& pytest")
    assert test_command in ci.splitlines()  # CI runs the README's command verbatim
    assert "pip install . && backpack demo" in text

"""axe-core in a Playwright page: the accessibility check any browser test can call.

    from tests.axe import assert_accessible
    assert_accessible(page, "the student's room")

axe-core is vendored for the tests only (tests/vendor/axe-core/README.md); the hub never serves
it. It runs axe's default rules (WCAG 2.x A and AA, and its best practices) on what the page shows
at that moment, and fails on serious or critical violations only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page

AXE_JS = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
SEVERE = frozenset({"serious", "critical"})

# One violation as plain data: rule, impact, what it means, and up to five elements with it.
_RUN = """async () => {
  const result = await window.axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => ({
      target: n.target.join(" "),
      html: n.html.slice(0, 200),
      summary: n.failureSummary,
    })),
  }));
}"""


def _inject(page: Page) -> None:
    if page.evaluate("() => typeof window.axe === 'object'"):
        return
    # Evaluated, not added as a <script> tag: the hub's CSP (script-src 'self') would refuse an
    # inline script, and the test must not loosen the policy it is checking pages under.
    page.evaluate(AXE_JS.read_text(encoding="utf-8") + "\n;true")


def axe_violations(page: Page, impacts: frozenset[str] = SEVERE) -> list[dict[str, Any]]:
    """The violations axe finds on the page as it is now, of the given impacts."""
    _inject(page)
    found: list[dict[str, Any]] = page.evaluate(_RUN)
    return [v for v in found if v["impact"] in impacts]


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']}")
        for n in v["nodes"]:
            lines.append(f"    {n['target']}: {n['html']}")
            lines.append(f"      {n['summary']}".replace("\n", " "))
    return "\n".join(lines)


def assert_accessible(page: Page, what: str | None = None) -> None:
    """No serious or critical axe violation on the page as it is now."""
    found = axe_violations(page)
    assert not found, f"{what or page.url}: axe found\n{describe(found)}"

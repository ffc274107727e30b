// A tiny element builder: text is always set as text (never parsed as HTML).
type Child = Node | string | null | undefined | false;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) if (child) node.append(child);
  return node;
}

/** Per-criterion contributions as labelled bars (width = the criterion's value). */
export function breakdownBars(breakdown: { criterion: string; value: number; weight: number; contribution: number }[]): HTMLElement {
  return el("ul", { class: "breakdown", "aria-label": "Score breakdown" },
    ...breakdown.map((c) => el("li", {},
      el("span", { class: "criterion" }, c.criterion),
      el("span", { class: "bar", role: "presentation" }, el("span", { style: `width:${Math.round(c.value * 100)}%` })),
      el("span", { class: "figure" }, `${c.value.toFixed(2)} × w${c.weight} → ${c.contribution.toFixed(3)}`))));
}

// One chart = a Chart.js canvas, the same numbers as a table (toggled, for screen readers
// and copying), and a CSV download through the API.
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale,
  LineController, LineElement, PointElement, Tooltip } from "chart.js";
import { el } from "./dom";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController,
  LineElement, PointElement, Legend, Tooltip);
Chart.defaults.animation = false; // figures, not a show; also keeps screenshots stable
Chart.defaults.color = "#1f2933";

export interface Series {
  label: string;
  values: (number | null)[];
  color: string;
}

export interface ChartSpec {
  id: string;
  title: string;
  kind: "bar" | "line";
  labels: string[];
  series: Series[];
  horizontal?: boolean;
  download: () => Promise<unknown>;
}

/** A <figure> with the chart, its table view and its CSV download button. */
export function chartFigure(spec: ChartSpec): HTMLElement {
  const canvas = el("canvas", { role: "img", "aria-label": `${spec.title} (chart; the table has the figures)` });
  const table = dataTable(spec);
  table.hidden = true;
  const toggle = el("button", { type: "button", "aria-expanded": "false", "aria-controls": `${spec.id}-table` }, "Show table");
  toggle.addEventListener("click", () => {
    table.hidden = !table.hidden;
    toggle.setAttribute("aria-expanded", String(!table.hidden));
    toggle.textContent = table.hidden ? "Show table" : "Hide table";
  });
  const download = el("button", { type: "button" }, "Download CSV");
  download.addEventListener("click", () => void spec.download());
  const figure = el("figure", { class: "chart", id: spec.id, "data-chart": spec.id },
    el("figcaption", {}, spec.title), el("div", { class: "canvas" }, canvas),
    el("div", { class: "actions" }, toggle, download), table);
  new Chart(canvas, {
    type: spec.kind,
    data: {
      labels: spec.labels,
      datasets: spec.series.map((s) => ({ label: s.label, data: s.values, backgroundColor: s.color, borderColor: s.color })),
    },
    options: { indexAxis: spec.horizontal ? "y" : "x", maintainAspectRatio: false, responsive: true },
  });
  return figure;
}

function dataTable(spec: ChartSpec): HTMLTableElement {
  const head = el("tr", {}, el("th", { scope: "col" }, ""), ...spec.series.map((s) => el("th", { scope: "col" }, s.label)));
  const rows = spec.labels.map((label, i) =>
    el("tr", {}, el("th", { scope: "row" }, label),
      ...spec.series.map((s) => el("td", {}, s.values[i] === null ? "—" : String(s.values[i])))));
  return el("table", { id: `${spec.id}-table` }, el("caption", {}, spec.title), el("thead", {}, head), el("tbody", {}, ...rows));
}

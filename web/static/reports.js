// Draws the dashboard's charts with Chart.js from the numbers each chart holder carries in its
// data-chart attribute (the same numbers as the table under it: the CSP forbids inline script,
// and without JavaScript the tables are the whole report).
const COLOURS = ["#1d70b8", "#f47738", "#00703c", "#d4351c", "#4c2c92", "#505a5f"];

function draw(holder) {
  const spec = JSON.parse(holder.dataset.chart);
  const canvas = document.createElement("canvas");
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", holder.dataset.chartLabel);
  canvas.textContent = holder.dataset.chartLabel;
  holder.append(canvas);
  holder.hidden = false;
  const valueAxis = { stacked: spec.stacked, beginAtZero: true, ticks: { precision: 0 } };
  const categoryAxis = { stacked: spec.stacked };
  new window.Chart(canvas, {
    type: "bar",
    data: {
      labels: spec.labels,
      datasets: spec.series.map((series, index) => ({
        label: series.label,
        data: series.data,
        backgroundColor: series.colour || COLOURS[index % COLOURS.length],
      })),
    },
    options: {
      indexAxis: spec.horizontal ? "y" : "x",
      maintainAspectRatio: false,
      animation: false,
      scales: spec.horizontal ? { x: valueAxis, y: categoryAxis } : { x: categoryAxis, y: valueAxis },
    },
  });
  holder.dataset.ready = "true";
}

if (window.Chart) {
  for (const holder of document.querySelectorAll("[data-chart]")) draw(holder);
}

// The loss and accuracy curves, redrawn at most once per animation frame.
import { lineChart } from './charts.js';
import { $, state } from './state.js';

let pending = false;

export function scheduleCharts(): void {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    renderCharts();
  });
}

export function renderCharts(): void {
  lineChart(
    $('loss-chart') as unknown as SVGSVGElement,
    [
      { name: 'CE', color: '#1f5fbf', points: state.steps.map((p) => [p.step, p.ce]) },
      { name: 'LDS', color: '#d2691e', points: state.steps.map((p) => [p.step, p.lds]) },
    ],
    { xLabel: 'step', yLabel: 'loss per step' },
  );
  const acc: { name: string; color: string; points: [number, number][]; dots?: boolean }[] = [
    { name: 'train', color: '#1f5fbf', points: state.history.map((h) => [h.epoch, h.trainAccuracy]), dots: true },
    { name: state.valSize > 0 ? 'val' : 'val (test set)', color: '#2e8b57', points: state.history.map((h) => [h.epoch, h.valAccuracy]), dots: true },
    { name: `test, first ${state.view?.monitor.count ?? 500}`, color: '#999', points: state.monitor.map((m) => [m.epoch, m.accuracy]) },
  ];
  if (state.test) acc.push({ name: 'test', color: '#c0392b', points: [[Math.max(1, state.history.length), state.test.accuracy]], dots: true });
  const lows = acc.flatMap((s) => s.points.map((p) => p[1]));
  lineChart($('acc-chart') as unknown as SVGSVGElement, acc, {
    xLabel: 'epoch',
    yLabel: 'accuracy',
    xMin: 0,
    yMin: lows.length ? Math.max(0, Math.floor(Math.min(...lows) * 10) / 10) : 0,
    yMax: 1,
  });
}

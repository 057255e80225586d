// The run's phase (idle, training, paused, ...) and which buttons it enables, with the banner
// for a run kept in IndexedDB.
import type { RunPhase } from '../protocol.js';
import { call } from './client.js';
import { $, buttons, state } from './state.js';

export function setPhase(phase: RunPhase, detail?: string): void {
  state.phase = phase;
  const el = $('phase');
  el.textContent = detail ? `${phase} (${detail})` : phase;
  el.dataset.phase = phase;
  updateButtons();
}

export function updateButtons(): void {
  const busy = ['starting', 'training', 'pausing', 'stopping'].includes(state.phase);
  buttons.start.disabled = !state.ready || busy;
  buttons.pause.disabled = state.phase !== 'training';
  buttons.resume.disabled = !state.ready || busy || !state.storedRun;
  buttons.stop.disabled = !(state.phase === 'training' || ((state.phase === 'paused' || !busy) && state.storedRun));
  buttons.download.disabled = !state.hasModel || state.phase === 'loading';
  buttons.evaluate.disabled = !state.hasModel || busy;
  const banner = $('stored-run');
  // After a reload: the run found in IndexedDB. (After a pause on this page, Resume says it.)
  banner.hidden = !state.storedRun || state.phase !== 'idle';
  if (state.storedRun) {
    const s = state.storedRun;
    $('stored-run-text').textContent =
      `A saved run is in this browser's storage: step ${s.step}, epoch ${s.epoch + 1} of ${s.epochs}, trained on ${s.dataSource.replace(' | ', ' and ')}, saved ${new Date(s.savedAt).toLocaleString()}.`;
  }
}

export async function refreshStoredRun(): Promise<void> {
  state.storedRun = await call('storedRun');
  updateButtons();
}

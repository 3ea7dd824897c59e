// The server's clock words: list windows are YYYYMMDDhhmmss in its time
// zone (GET /api/v1/engines says which, utc_offset_minutes), while the
// browser's inputs are in the viewer's own zone.

const p = (n) => String(n).padStart(2, '0');

// Epoch ms -> "YYYYMMDDhhmmss" at the server's offset.
export function serverStamp(ms, offsetMin) {
  const d = new Date(ms + offsetMin * 60000);
  return d.getUTCFullYear() + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) +
         p(d.getUTCHours()) + p(d.getUTCMinutes()) + p(d.getUTCSeconds());
}

// A datetime-local input's value ("2026-12-02T14:05") -> epoch ms, or NaN.
export function localInput(value) {
  return value ? new Date(value).getTime() : NaN;
}

// Epoch ms -> a datetime-local value in the viewer's zone.
export function toLocalInput(ms) {
  const d = new Date(ms);
  return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) +
         'T' + p(d.getHours()) + ':' + p(d.getMinutes());
}

export function zoneName(offsetMin) {
  const sign = offsetMin < 0 ? '-' : '+';
  const a = Math.abs(offsetMin);
  return 'UTC' + sign + Math.floor(a / 60) + (a % 60 ? ':' + p(a % 60) : '');
}

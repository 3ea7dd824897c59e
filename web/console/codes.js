// What a client should do about a task's failure code (docs/api.md s.7.3)
// or an error answer (s.7.2): shown under the code on the task page.

const ADVICE = {
  'BadRequest.InputDownloadFailed':
    'An input could not be fetched. Check that its URL is public and answers ' +
    'quickly, or upload the file instead; then submit again.',
  'InvalidURL':
    'An input address is not allowed (a private address, or not your upload). ' +
    'Use a public URL or upload the file; then submit again.',
  'BadRequest.UnsupportedFileFormat':
    'An input is not a decodable image (JPEG, PNG, WEBP) or video (MP4, MOV). ' +
    'Convert it and submit again; retrying the same file fails the same way.',
  'InvalidParameter':
    'An input breaks a rule (the message gives the measured value). Fix that ' +
    'input; retrying unchanged fails the same way.',
  'DataInspectionFailed':
    'The engine refused the content. Change the prompt or the inputs; do not ' +
    'retry unchanged.',
  'InternalError.Timeout':
    'The render ran past its deadline or ran out of attempts. Retrying later ' +
    'is reasonable; if it keeps happening, ask the operator about the engine.',
  'InternalError.Algo':
    'The engine failed. Retry once with the same request; if it fails again, ' +
    'the message says why — report it with the task id.',
  'InternalError':
    'The server could not run the task. Retry later; if it persists, report ' +
    'the task id to the operator.',
  'ModelUnavailable':
    'The model\'s engine failed its health check. Wait and retry; the engines ' +
    'page shows why.',
  'Throttling.RateQuota': 'Too many requests per second: wait Retry-After seconds.',
  'Throttling.AllocationQuota':
    'This key has too many unfinished tasks or uploads: wait for some to end.',
  'Throttling': 'The server\'s queue is full: retry after a few seconds.',
  'Arrearage': 'This key\'s quota or balance is used up: ask an admin to raise it.',
  'InvalidApiKey': 'The key was not accepted: check it, or ask for a new one.',
  'AccessDenied': 'This key may not do that (or the link expired).',
};

export function advice(code) {
  if (!code) return '';
  if (ADVICE[code]) return ADVICE[code];
  return 'An upstream service\'s own code, passed through: see its ' +
         'documentation; retrying unchanged may fail the same way.';
}

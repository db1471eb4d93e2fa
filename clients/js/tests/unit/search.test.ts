// snippetParts: msg.search snippets become text runs, matches flagged, marks never shown.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { snippetParts } from '../../src/index.js';

describe('snippetParts', () => {
  it('splits matches from the text around them', () => {
    assert.deepEqual(snippetParts('the \u0002zebra\u0003 crossing'), [
      { text: 'the ', match: false },
      { text: 'zebra', match: true },
      { text: ' crossing', match: false },
    ]);
    assert.deepEqual(snippetParts('\u0002a\u0003 \u0002b\u0003'), [
      { text: 'a', match: true },
      { text: ' ', match: false },
      { text: 'b', match: true },
    ]);
  });

  it('keeps markup as text and survives stray marks', () => {
    assert.deepEqual(snippetParts('<b>x</b>'), [{ text: '<b>x</b>', match: false }]);
    assert.deepEqual(snippetParts('a\u0003b\u0002c'), [
      { text: 'a', match: false },
      { text: 'b', match: false },
      { text: 'c', match: true },
    ]);
    assert.deepEqual(snippetParts(''), []);
    assert.deepEqual(snippetParts('🦊\u0002é\u0003'), [
      { text: '🦊', match: false },
      { text: 'é', match: true },
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import { dispatchEventMessage, onRecordEvent, type RecordEvent } from './events';

describe('event stream messages', () => {
  it('passes record events on with string ids, and resync to every listener as entity *', () => {
    const got: RecordEvent[] = [];
    const stop = onRecordEvent((e) => got.push(e));
    dispatchEventMessage('{"entity":"account","id":123,"kind":"created"}');
    dispatchEventMessage('{"kind":"resync"}');
    dispatchEventMessage('not json');
    dispatchEventMessage('{"kind":"updated"}'); // no entity: dropped
    stop();
    dispatchEventMessage('{"kind":"resync"}'); // unsubscribed
    expect(got).toEqual([
      { entity: 'account', id: '123', kind: 'created' },
      { entity: '*', id: '', kind: 'resync' },
    ]);
  });
});

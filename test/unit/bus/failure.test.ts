import { MigrationNotFound, NoSuchMethod, RemoteError, UnsupportedVersion } from '../../../src/common/errors.js';
import { deserializeFailure, failureOf, serializeFailure } from '../../../src/bus/failure.js';
import { selectEndpoint } from '../../../src/bus/rpc/server.js';

// A failure exactly as Python oslo.messaging 14 serialized it (captured from a real peer).
const pythonValueError = JSON.stringify({
  class: 'ValueError',
  module: 'builtins',
  message: 'bad input 7',
  tb: ['Traceback (most recent call last):\n', '  File "peer.py", line 75, in fail_value\n    raise ValueError(text)\n', 'ValueError: bad input 7\n'],
  args: ['bad input 7'],
  kwargs: {},
});

describe('failure serialization', () => {
  test('a Ferry error goes out with its class, module ferry.common.errors, message, args, kwargs, tb', () => {
    const f = JSON.parse(serializeFailure(new MigrationNotFound('Migration m1 could not be found.', { migration_id: 'm1' }))) as Record<string, unknown>;
    expect(Object.keys(f).sort()).toEqual(['args', 'class', 'kwargs', 'message', 'module', 'tb']);
    expect(f).toMatchObject({
      class: 'MigrationNotFound',
      module: 'ferry.common.errors',
      message: 'Migration m1 could not be found.',
      args: ['Migration m1 could not be found.'],
      kwargs: { migration_id: 'm1' },
    });
    expect(Array.isArray(f.tb) && (f.tb as string[]).every((l) => l.endsWith('\n'))).toBe(true);
  });

  test('a Ferry class comes back as that class, with details', () => {
    const e = deserializeFailure(serializeFailure(new MigrationNotFound('gone', { migration_id: 'm1' })));
    expect(e).toBeInstanceOf(MigrationNotFound);
    expect(e.message).toBe('gone');
    expect(e.details.migration_id).toBe('m1');
    expect(e.details.remote_class).toBe('MigrationNotFound');
  });

  test('an unknown Python class becomes RemoteError with class, module and traceback in details', () => {
    const e = deserializeFailure(pythonValueError);
    expect(e).toBeInstanceOf(RemoteError);
    expect(e.message).toBe('Remote error: ValueError bad input 7');
    expect(e.details).toMatchObject({ remote_class: 'ValueError', remote_module: 'builtins', remote_message: 'bad input 7', args: ['bad input 7'] });
    expect(String(e.details.traceback)).toContain('raise ValueError(text)');
  });

  test('re-raising a remote failure keeps its original identity (as oslo strips _Remote)', () => {
    const f = failureOf(deserializeFailure(pythonValueError));
    expect(f).toMatchObject({ class: 'ValueError', module: 'builtins', message: 'bad input 7' });
    const g = deserializeFailure(JSON.stringify({ class: 'MigrationNotFound_Remote', module: 'nova.exception_Remote', message: 'x' }));
    expect(g).toBeInstanceOf(MigrationNotFound);
    expect(g.details.remote_module).toBe('nova.exception');
  });

  test('garbage failure strings become RemoteError, never a throw', () => {
    expect(deserializeFailure('not json')).toBeInstanceOf(RemoteError);
    expect(deserializeFailure('[1]')).toBeInstanceOf(RemoteError);
  });

  test('plain JS errors go out under their own name', () => {
    expect(failureOf(new TypeError('t'))).toMatchObject({ class: 'TypeError', module: 'ferry.javascript', message: 't' });
  });
});

describe('dispatch (oslo RPCDispatcher rules)', () => {
  class A {
    target = { version: '1.3' };
    hello() {
      return 'a';
    }
    _hidden() {
      return 'no';
    }
  }
  const nsEndpoint = { target: { version: '2.0', namespace: 'admin' }, hello: () => 'ns' };
  const eps = [new A(), nsEndpoint];

  test('version and namespace select the endpoint', () => {
    expect(selectEndpoint(eps, 'hello', '1.0', null).fn.call(eps[0], undefined as never, {})).toBe('a');
    expect(selectEndpoint(eps, 'hello', '2.0', 'admin').endpoint).toBe(nsEndpoint);
  });

  test('unknown or private method with a compatible endpoint: NoSuchMethod with oslo text and wire identity', () => {
    for (const m of ['nope', '_hidden', 'constructor', 'toString', 'target']) {
      let err: unknown;
      try {
        selectEndpoint(eps, m, '1.0', null);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NoSuchMethod);
      expect((err as Error).message).toBe(`Endpoint does not support RPC method ${m}`);
      expect(failureOf(err)).toMatchObject({
        class: 'NoSuchMethod',
        module: 'oslo_messaging.rpc.dispatcher',
        args: [`Endpoint does not support RPC method ${m}`],
      });
    }
  });

  test('no compatible endpoint: UnsupportedVersion with oslo text', () => {
    expect(() => selectEndpoint(eps, 'hello', '1.4', null)).toThrow(UnsupportedVersion);
    expect(() => selectEndpoint(eps, 'hello', '3.0', null)).toThrow('Endpoint does not support RPC version 3.0. Attempted method: hello');
    expect(() => selectEndpoint(eps, 'hello', '1.0', 'other')).toThrow(UnsupportedVersion);
  });

  test('an endpoint without a target accepts any version, like oslo', () => {
    expect(selectEndpoint([{ hi: () => 1 }], 'hi', '9.9', null)).toBeTruthy();
  });
});

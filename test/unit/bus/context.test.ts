import { RequestContext } from '../../../src/common/context.js';
import { packContext, sanitizeForNotification, unpackContext } from '../../../src/bus/context.js';

describe('RequestContext', () => {
  test('a new context gets req-<uuid>', () => {
    expect(new RequestContext().request_id).toMatch(/^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  test('packed as _context_<key> and unpacked back, unknown keys kept', () => {
    const ctx = new RequestContext({
      user_id: 'u',
      project_id: 'p',
      roles: ['admin'],
      is_admin: true,
      auth_token: 'tok',
      extra: { instance_lock_checked: false },
    });
    const msg = packContext({ method: 'm' }, ctx.toDict());
    expect(msg._context_user_id).toBe('u');
    expect(msg._context_user).toBe('u'); // oslo.context spelling
    expect(msg._context_project_id).toBe('p');
    expect(msg._context_roles).toEqual(['admin']);
    expect(msg._context_request_id).toBe(ctx.request_id);
    const back = RequestContext.fromDict(unpackContext(msg));
    expect(msg).toEqual({ method: 'm' });
    expect(back).toEqual(ctx);
  });

  test('reads oslo.context dicts (user, project, tenant spellings)', () => {
    const c = RequestContext.fromDict({ user: 'u1', tenant: 't1', roles: ['a', 3], is_admin: 'yes' });
    expect(c.user_id).toBe('u1');
    expect(c.project_id).toBe('t1');
    expect(c.roles).toEqual(['a']);
    expect(c.is_admin).toBe(false);
    // Unsaid is not the admin project; the service's own admin context says it is.
    expect(c.is_admin_project).toBe(false);
    expect(new RequestContext().is_admin_project).toBe(false);
    expect(RequestContext.admin().is_admin_project).toBe(true);
  });

  test('notifications never carry the token', () => {
    const d = sanitizeForNotification(new RequestContext({ user_id: 'u', auth_token: 'tok' }).toDict());
    expect(d).not.toHaveProperty('auth_token');
    expect(d.user_id).toBe('u');
    expect(d.request_id).toBeDefined();
  });
});

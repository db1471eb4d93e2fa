import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canInvite, invitePolicyAllows, type InvitePolicy, type Role } from '../../src/index.js';

describe('canInvite', () => {
  it('follows the documented invitePolicy rule for every role', () => {
    const table: [InvitePolicy, Role | null, boolean][] = [
      ['owner', 'owner', true],
      ['owner', 'admin', false],
      ['owner', 'member', false],
      ['admins', 'owner', true],
      ['admins', 'admin', true],
      ['admins', 'member', false],
      ['members', 'owner', true],
      ['members', 'admin', true],
      ['members', 'member', true],
      ['members', null, false],
      ['admins', null, false],
    ];
    for (const [policy, role, want] of table) {
      assert.equal(invitePolicyAllows(policy, role), want, `${policy}/${role}`);
      assert.equal(canInvite({ invitePolicy: policy, role }), want, `${policy}/${role}`);
    }
  });

  it('uses the server\'s canInvite when the chat carries one', () => {
    assert.equal(canInvite({ invitePolicy: 'owner', role: 'member', canInvite: true }), true);
    assert.equal(canInvite({ invitePolicy: 'members', role: 'owner', canInvite: false }), false);
  });

  it('offers nothing without a chat or for an unknown policy', () => {
    assert.equal(canInvite(null), false);
    assert.equal(canInvite({ invitePolicy: 'everyone' as InvitePolicy, role: 'owner' }), false);
  });
});

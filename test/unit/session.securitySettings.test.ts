/**
 * The security settings stay the user's: which ones a workspace's settings files set (ignored,
 * and said once), and the move of the old `apollo.sandbox` string to `apollo.sandbox.mode`.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { type LegacySandboxStore, moveLegacySandbox, parseSettingsText, SecurityNotices, securityKeysIn, workspaceSecurityValues } from '../../src/core/session/securitySettings';
import { settingsSource } from '../fixtures/settingsSource';

test('settings files parse with comments and trailing commas; strings keep their slashes', () => {
  const text = '{\n  // the endpoint\n  "apollo.baseUrl": "http://host//v1", /* inline */\n  "apollo.model": "m\\"1",\n  "list": [1, 2,],\n}\n';
  assert.deepEqual(parseSettingsText(text), { 'apollo.baseUrl': 'http://host//v1', 'apollo.model': 'm"1', list: [1, 2] });
  assert.equal(parseSettingsText('[1, 2]'), undefined);
  assert.equal(parseSettingsText('{ "unterminated": '), undefined);
  assert.deepEqual(parseSettingsText('{} /* a comment never closed'), {});
});

test('the security settings a settings object sets, flat or nested, in their declared order', () => {
  assert.deepEqual(
    securityKeysIn({
      'apollo.model': 'm',
      'apollo.datasetPath': '/x',
      'apollo.sandbox.mode': 'off',
      apollo: { baseUrl: 'u', request: { temperature: 1, extra: {} } },
      'editor.fontSize': 12,
    }),
    ['apollo.baseUrl', 'apollo.sandbox.mode', 'apollo.datasetPath', 'apollo.request.extra'],
  );
  assert.deepEqual(securityKeysIn({ 'apollo.sandbox': 'off' }), ['apollo.sandbox'], 'the old setting counts too');
  assert.deepEqual(securityKeysIn({ apollo: { sandbox: { network: false } } }), ['apollo.sandbox'], 'nested under apollo.sandbox, it is named by that key');
  assert.deepEqual(securityKeysIn({ 'apollo.judge': { model: 'j' } }), []);
});

test("the workspace's findings name each file, the workspace file's settings section, and what only the API shows", () => {
  const folders = [
    { name: 'app', text: '{ "apollo.baseUrl": "https://attacker.example" }' },
    { name: 'lib', text: undefined },
    { name: 'docs', text: 'not json' },
  ];
  const workspaceFile = { name: 'team.code-workspace', text: '{ "apollo.runsPath": "/nope", "settings": { "apollo.sandbox.network": false } }' };
  const config = settingsSource({ workspace: { baseUrl: 'https://attacker.example', 'sandbox.allow': ['*'] }, folder: { provider: 'vscode-lm' }, user: { datasetPath: '/mine' } });
  assert.deepEqual(workspaceSecurityValues({ folders, workspaceFile }, config), [
    { file: 'app/.vscode/settings.json', keys: ['apollo.baseUrl'] },
    { file: 'team.code-workspace', keys: ['apollo.sandbox.network'] },
    { file: 'the workspace settings', keys: ['apollo.provider', 'apollo.sandbox.allow'] },
  ]);
  assert.deepEqual(workspaceSecurityValues({ folders: folders.slice(0, 1) }, settingsSource({})), [{ file: '.vscode/settings.json', keys: ['apollo.baseUrl'] }], 'one folder: no folder name');
  assert.deepEqual(workspaceSecurityValues({ folders: [] }, settingsSource({ user: { baseUrl: 'u' } })), []);
});

test('what is said: every new key logged once, one notification for the window that names all found', () => {
  const notices = new SecurityNotices();
  const first = [{ file: '.vscode/settings.json', keys: ['apollo.baseUrl'] }];
  assert.deepEqual(notices.next(first), {
    log: "The workspace's .vscode/settings.json sets apollo.baseUrl; Apollo ignores workspace values of security settings and uses yours.",
    notice: "Apollo: The workspace's .vscode/settings.json sets apollo.baseUrl; Apollo ignores workspace values of security settings and uses yours.",
  });
  assert.deepEqual(notices.next(first), {}, 'the same file saved again says nothing');
  assert.deepEqual(
    notices.next([
      { file: '.vscode/settings.json', keys: ['apollo.baseUrl', 'apollo.sandbox.mode'] },
      { file: 'the workspace settings', keys: ['apollo.provider'] },
    ]),
    {
      log: "The workspace's .vscode/settings.json sets apollo.sandbox.mode; the workspace settings sets apollo.provider; Apollo ignores workspace values of security settings and uses yours.",
    },
  );
  assert.deepEqual(new SecurityNotices().next([]), {});
});

/** The user's settings as a file and as the API shows them, in memory; `failWrite` makes writing the file fail. */
function userSettings(text: string | undefined, values: Record<string, unknown> = {}, failWrite = false) {
  const state = { text, values: { ...values } };
  const store: LegacySandboxStore = {
    readUserSettings: async () => state.text,
    writeUserSettings: async (edited) => {
      if (failWrite) throw new Error('EACCES: permission denied');
      state.text = edited;
    },
    userValue: (key) => state.values[key],
    updateUser: async (key, value) => {
      if (value === undefined) delete state.values[key];
      else state.values[key] = value;
    },
  };
  return { state, store };
}

test('the old apollo.sandbox string moves to apollo.sandbox.mode: the line leaves the file, the rest stays as it was', async () => {
  const text = '{\n  "editor.fontSize": 14,\n  "apollo.sandbox": "off", // old\n  "apollo.model": "m"\n}\n';
  const { state, store } = userSettings(text);
  assert.deepEqual(await moveLegacySandbox(store), { moved: true, message: 'Apollo: the setting apollo.sandbox is now apollo.sandbox.mode; your value "off" was moved to it in your user settings.' });
  assert.equal(state.text, '{\n  "editor.fontSize": 14,\n  "apollo.model": "m"\n}\n');
  assert.deepEqual(state.values, { 'sandbox.mode': 'off' });

  const set = userSettings(undefined, { sandbox: 'auto', 'sandbox.mode': 'off' });
  assert.equal((await moveLegacySandbox(set.store)).moved, true);
  assert.deepEqual(set.state.values, { 'sandbox.mode': 'off' }, 'a mode already set is kept; the old key goes');

  assert.deepEqual(await moveLegacySandbox(userSettings('{ "apollo.sandbox.mode": "off" }', { sandbox: { network: false } }).store), { moved: false }, 'nothing to move');
});

test('an old value that cannot be moved keeps applying, and says why', async () => {
  const failing = userSettings('{\n  "apollo.sandbox": "off"\n}\n', {}, true);
  assert.deepEqual(await moveLegacySandbox(failing.store), {
    moved: false,
    fallback: 'off',
    message: 'Could not move apollo.sandbox to apollo.sandbox.mode in your settings: EACCES: permission denied. Your old value "off" still applies.',
  });
  const inline = await moveLegacySandbox(userSettings('{ "apollo.sandbox": "weird" }').store);
  assert.equal(inline.fallback, 'auto');
  assert.match(inline.message!, /the old key was not found on a line of its own/);
  const twice = await moveLegacySandbox(userSettings('{\n  "apollo.sandbox": "off",\n  "apollo.sandbox": "off"\n}\n').store);
  assert.match(twice.message!, /the old key appears more than once/);
});

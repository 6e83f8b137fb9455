/** Apollo's settings as VS Code holds them, read by core/session/settings.ts with the keys in SecretStorage. */
import * as vscode from 'vscode';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { type ApolloSettings, readApolloSettings, readMaskPolicy as maskPolicyOf, userAllowList as allowListOf } from '../core/session/settings';
import { type SecurityFinding, workspaceSecurityValues as securityValuesIn } from '../core/session/securitySettings';

export type { ApolloSettings };

const apollo = () => vscode.workspace.getConfiguration('apollo');

/** The extension's storage folder (`context.storageUri`, else `globalStorageUri`), set at activation; the old `apollo.sandbox` value while it cannot be moved. */
const local: { storage?: string; legacySandboxMode?: string } = {};

export function useExtensionStorage(dir: string | undefined): void {
  local.storage = dir;
}

export function setLegacySandboxFallback(value: string | undefined): void {
  local.legacySandboxMode = value;
}

export const readMaskPolicy = (config: Pick<vscode.WorkspaceConfiguration, 'get'> = apollo()) => maskPolicyOf(config);

export const userAllowList = (config: Pick<vscode.WorkspaceConfiguration, 'inspect'> = apollo()) => allowListOf(config);

export function readSettings(secrets: vscode.SecretStorage, workspace: string): Promise<ApolloSettings> {
  return readApolloSettings(apollo(), { secret: (name) => secrets.get(name), workspace, ...local, allow: () => userAllowList() });
}

/** Where the open workspace sets security settings: each settings file (on disk) and the keys it sets. */
export async function workspaceSecurityValues(): Promise<SecurityFinding[]> {
  const read = (uri: vscode.Uri) => (uri.scheme === 'file' ? fs.readFile(uri.fsPath, 'utf8').catch(() => undefined) : undefined);
  const folders = vscode.workspace.workspaceFolders ?? [];
  const workspaceFile = vscode.workspace.workspaceFile;
  return securityValuesIn(
    {
      folders: await Promise.all(folders.map(async (folder) => ({ name: folder.name, text: await read(vscode.Uri.joinPath(folder.uri, '.vscode', 'settings.json')) }))),
      ...(workspaceFile ? { workspaceFile: { name: path.basename(workspaceFile.fsPath), text: await read(workspaceFile) } } : {}),
    },
    vscode.workspace.getConfiguration('apollo', folders[0]?.uri),
  );
}

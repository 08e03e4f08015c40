/** The agent: discovery → schedule → backups → history, behind the AgentService contract. */
export { Agent, type AgentOptions } from './agent';
export { needsPasscodeAtBackup } from './device-facts';
export * from './types';

/**
 * The agent's log lines go to the front end's log (a console, a service manager's journal) and to
 * `<data>/logs/agent.log` (util/log-file), the one place a person or a bug report finds them for
 * the tray app, which has no console. A log file that cannot be opened is said once and left out.
 */
import { errText } from './agent-context';
import { LogFile, logFilePath } from '../util/log-file';

export interface AgentLog {
  log: (line: string) => void;
  /** undefined when the file could not be opened. */
  file: LogFile | undefined;
}

export function openAgentLog(dataDir: string, frontEnd?: (line: string) => void): AgentLog {
  let file: LogFile | undefined;
  try {
    file = new LogFile(logFilePath(dataDir));
  } catch (e) {
    frontEnd?.(`cannot write the log file ${logFilePath(dataDir)}: ${errText(e)}`);
  }
  return {
    file,
    log: (line) => {
      file?.write(line);
      frontEnd?.(line);
    },
  };
}

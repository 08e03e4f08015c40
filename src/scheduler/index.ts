/** Scheduling: pure decisions from state (policy, window, sleep), a tick source and a job gate. */
export * from './policy';
export * from './window';
export * from './sleep';
export * from './ticker';
export * from './coordinator';
export { assertTimeZone, wallClock, localToInstant, parseClockTime } from './time';
export type { LocalDate, WallClock } from './time';

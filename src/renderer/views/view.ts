/** A page or tab of the UI: its element, a document title, and what to undo when it goes. */
export interface View {
  root: HTMLElement;
  title: string;
  dispose(): void;
}

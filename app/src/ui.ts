/** A few DOM helpers: elements from data (text is never parsed as HTML), screens, the PIN pad. */
export type Child = Node | string | number | null | undefined | false;
type Props = Record<string, unknown>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2).toLowerCase(), value as EventListener);
    else if (name === 'class') element.className = String(value);
    else if (name === 'value' && 'value' in element) (element as HTMLInputElement).value = String(value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) if (child !== null && child !== undefined && child !== false) element.append(typeof child === 'number' ? String(child) : child);
  return element;
}

let onLeave: Array<() => void> = [];

/** Replaces the screen; moves focus to its heading (never to an action button). */
export function render(...nodes: Child[]): void {
  onLeave.forEach((f) => f());
  onLeave = [];
  const root = document.getElementById('app')!;
  root.replaceChildren(...nodes.filter((n): n is Node | string => typeof n === 'string' || n instanceof Node));
  const heading = root.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: false });
  }
  window.scrollTo(0, 0);
}

/** Runs `cleanup` when the current screen is replaced (timers, listeners). */
export function whenLeaving(cleanup: () => void): void {
  onLeave.push(cleanup);
}

export function alertBox(text: string, kind: 'error' | 'info' = 'error'): HTMLElement {
  return h('p', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

const time = new Intl.DateTimeFormat('fr-FR', { hour: '2-digit', minute: '2-digit' });
const date = new Intl.DateTimeFormat('fr-FR', { dateStyle: 'long' });
export const formatTime = (ms: number) => time.format(new Date(ms));
export const formatDate = (ms: number) => date.format(new Date(ms));

export function remaining(seconds: number): string {
  if (seconds >= 120) return `${Math.ceil(seconds / 60)} min`;
  return `${Math.max(0, Math.ceil(seconds))} s`;
}

export interface PinPad {
  element: HTMLElement;
  value(): string;
  clear(): void;
}

/**
 * A 4-digit PIN pad: buttons in the usual phone layout plus the keyboard (digits, backspace).
 * The value is never shown, only how many digits were typed.
 */
export function pinPad(options: { label: string; onChange?(value: string): void }): PinPad {
  let value = '';
  const dots = h('div', { class: 'pin-dots', 'aria-hidden': 'true' });
  const status = h('p', { class: 'sr-only', 'aria-live': 'polite' });
  const paint = (notify = true) => {
    dots.replaceChildren(...Array.from({ length: 4 }, (_, i) => h('span', { class: i < value.length ? 'dot filled' : 'dot' })));
    status.textContent = `${value.length} chiffre${value.length > 1 ? 's' : ''} saisi${value.length > 1 ? 's' : ''} sur 4`;
    if (notify) options.onChange?.(value);
  };
  const type = (digit: string) => {
    if (value.length < 4) {
      value += digit;
      paint();
    }
  };
  const erase = () => {
    value = value.slice(0, -1);
    paint();
  };
  const keys = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '', '0', '⌫'].map((key) => {
    if (key === '') return h('span', { class: 'pad-gap' });
    if (key === '⌫') return h('button', { type: 'button', class: 'pad-key', 'aria-label': 'Effacer', onclick: erase }, key);
    return h('button', { type: 'button', class: 'pad-key', onclick: () => type(key) }, key);
  });
  const pad = h('div', { class: 'pad', role: 'group', 'aria-label': options.label }, ...keys);
  const element = h('div', { class: 'pin', tabindex: '0', 'aria-label': options.label, onkeydown: (event: KeyboardEvent) => {
    if (/^\d$/.test(event.key)) {
      type(event.key);
      event.preventDefault();
    } else if (event.key === 'Backspace') {
      erase();
      event.preventDefault();
    }
  } }, h('p', { class: 'pin-label' }, options.label), dots, status, pad);
  paint(false);
  return {
    element,
    value: () => value,
    clear: () => {
      value = '';
      paint();
    },
  };
}

/** A 6-digit code field (activation codes, typed-code requests). */
export function codeInput(props: { id: string; label: string; hint?: string; autocomplete?: string }): { element: HTMLElement; input: HTMLInputElement } {
  const input = h('input', {
    id: props.id, name: props.id, type: 'text', inputmode: 'numeric', pattern: '[0-9]*', maxlength: '7', autocomplete: props.autocomplete ?? 'off',
    spellcheck: 'false', class: 'code-input', ...(props.hint ? { 'aria-describedby': `${props.id}-hint` } : {}),
  });
  const element = h('div', { class: 'field' }, h('label', { for: props.id }, props.label), props.hint ? h('p', { id: `${props.id}-hint`, class: 'hint' }, props.hint) : null, input);
  return { element, input };
}

export const digitsOf = (text: string) => text.replace(/[\s.-]/g, '');

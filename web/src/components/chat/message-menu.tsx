// The actions of one message, opened from its "⋯" button (hover or keyboard), a right click, or a
// long press / tap on phones: a menu (reply, react, edit, delete) and the reaction picker
// (recently used emoji first, kept per user in localStorage). Both are small popovers next to the
// message, a sheet at the bottom of the screen on phones. Keyboard: the arrows move through the
// menu, Escape closes and gives focus back to where it came from, Tab leaves and closes. In the
// picker the arrows move a roving focus over the grid (one tab stop: left/right along it, up/down
// by rows, across the Recent and All sections; Home/End), and Enter picks the focused emoji.
import { useEffect, useRef, type KeyboardEvent, type ReactNode } from 'react';
import { EMOJI, emojiName, recentEmoji } from '../../lib/emoji';

export interface MenuItem {
  label: string;
  onSelect: () => void;
  danger?: boolean;
  /** Keeps the menu open (the item switches it to another view, like the picker). */
  keepOpen?: boolean;
}

function useDismiss(ref: React.RefObject<HTMLElement | null>, onClose: () => void) {
  const close = useRef(onClose);
  close.current = onClose;
  useEffect(() => {
    const onDown = (e: PointerEvent) => {
      if (ref.current && !ref.current.contains(e.target as Node)) close.current();
    };
    // The opening click (or long press) is over by the time this listens.
    const t = setTimeout(() => document.addEventListener('pointerdown', onDown), 0);
    return () => {
      clearTimeout(t);
      document.removeEventListener('pointerdown', onDown);
    };
  }, [ref]);
}

function Popover({
  label,
  role,
  up,
  onClose,
  onKeyDown,
  children,
  testId,
}: {
  label: string;
  role: 'menu' | 'dialog';
  up: boolean;
  onClose: () => void;
  onKeyDown?: (e: KeyboardEvent<HTMLDivElement>) => void;
  children: ReactNode;
  testId: string;
}) {
  const ref = useRef<HTMLDivElement>(null);
  useDismiss(ref, onClose);
  useEffect(() => {
    ref.current?.querySelector<HTMLElement>('button')?.focus();
  }, []);
  return (
    <div
      ref={ref}
      className={`msg-popover${up ? ' msg-popover--up' : ''}`}
      role={role}
      aria-label={label}
      data-testid={testId}
      onKeyDown={(e) => {
        if (e.key === 'Escape') {
          e.preventDefault();
          e.stopPropagation();
          onClose();
        } else if (e.key === 'Tab') {
          // Leaving the popover closes it; focus moves on as usual.
          setTimeout(onClose, 0);
        } else onKeyDown?.(e);
      }}
    >
      {children}
    </div>
  );
}

export function MessageMenu({ items, up, onClose }: { items: MenuItem[]; up: boolean; onClose: () => void }) {
  return (
    <Popover
      label="Message actions"
      role="menu"
      up={up}
      onClose={onClose}
      testId="message-menu"
      onKeyDown={(e) => {
        const list = [...e.currentTarget.querySelectorAll<HTMLElement>('[role="menuitem"]')];
        const i = list.indexOf(document.activeElement as HTMLElement);
        let next = -1;
        if (e.key === 'ArrowDown') next = (i + 1) % list.length;
        else if (e.key === 'ArrowUp') next = (i - 1 + list.length) % list.length;
        else if (e.key === 'Home') next = 0;
        else if (e.key === 'End') next = list.length - 1;
        if (next >= 0) {
          e.preventDefault();
          list[next].focus();
        }
      }}
    >
      {items.map((it, i) => (
        <button
          key={it.label}
          type="button"
          role="menuitem"
          tabIndex={i === 0 ? 0 : -1}
          className={`msg-menu__item${it.danger ? ' msg-menu__item--danger' : ''}`}
          onClick={() => {
            if (!it.keepOpen) onClose();
            it.onSelect();
          }}
        >
          {it.label}
        </button>
      ))}
    </Popover>
  );
}

// The picker's grids as rows of buttons, from their layout (the grid wraps to the popover's width).
function gridRows(root: HTMLElement): HTMLElement[][] {
  const rows: HTMLElement[][] = [];
  for (const grid of root.querySelectorAll<HTMLElement>('.emoji-picker__grid')) {
    let top: number | null = null;
    for (const b of grid.querySelectorAll<HTMLElement>('button')) {
      if (top === null || b.offsetTop > top + 2) {
        rows.push([]);
        top = b.offsetTop;
      }
      rows[rows.length - 1]!.push(b);
    }
  }
  return rows;
}

// Arrow keys over the picker: the focused emoji moves, and is the picker's one tab stop.
function pickerKeys(e: KeyboardEvent<HTMLDivElement>) {
  const rows = gridRows(e.currentTarget);
  const flat = rows.flat();
  const at = flat.indexOf(document.activeElement as HTMLElement);
  if (at < 0 || flat.length === 0) return;
  let r = rows.findIndex((row) => row.includes(flat[at]!));
  let c = rows[r]!.indexOf(flat[at]!);
  let next: HTMLElement | undefined;
  if (e.key === 'ArrowRight') next = flat[Math.min(at + 1, flat.length - 1)];
  else if (e.key === 'ArrowLeft') next = flat[Math.max(at - 1, 0)];
  else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    r = e.key === 'ArrowDown' ? Math.min(r + 1, rows.length - 1) : Math.max(r - 1, 0);
    c = Math.min(c, rows[r]!.length - 1);
    next = rows[r]![c];
  } else if (e.key === 'Home') next = flat[0];
  else if (e.key === 'End') next = flat[flat.length - 1];
  else return;
  e.preventDefault();
  if (!next) return;
  for (const b of flat) b.tabIndex = b === next ? 0 : -1;
  next.focus();
}

export function EmojiPicker({
  userId,
  up,
  onPick,
  onClose,
}: {
  userId: number | undefined;
  up: boolean;
  onPick: (emoji: string) => void;
  onClose: () => void;
}) {
  const recent = recentEmoji(userId);
  let first = true; // the first emoji is the tab stop until the arrows move it
  const button = (emoji: string, where: string) => (
    <button
      key={`${where}${emoji}`}
      type="button"
      tabIndex={first ? ((first = false), 0) : -1}
      className="emoji-btn"
      aria-label={`React with ${emojiName(emoji)}`}
      title={emojiName(emoji)}
      data-emoji={emoji}
      onClick={() => {
        onPick(emoji);
        onClose();
      }}
    >
      <span aria-hidden="true">{emoji}</span>
    </button>
  );
  return (
    <Popover label="Pick a reaction" role="dialog" up={up} onClose={onClose} testId="emoji-picker" onKeyDown={pickerKeys}>
      {recent.length > 0 && (
        <div className="emoji-picker__section" role="group" aria-label="Recently used">
          <div className="emoji-picker__title" aria-hidden="true">
            Recent
          </div>
          <div className="emoji-picker__grid">{recent.map((e) => button(e, 'r'))}</div>
        </div>
      )}
      <div className="emoji-picker__section" role="group" aria-label="All reactions">
        {recent.length > 0 && (
          <div className="emoji-picker__title" aria-hidden="true">
            All
          </div>
        )}
        <div className="emoji-picker__grid">{EMOJI.map((e) => button(e.emoji, 'a'))}</div>
      </div>
    </Popover>
  );
}

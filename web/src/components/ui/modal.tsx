// The one accessible dialog of the app. While open:
// - focus starts on the dialog's first field (an input, select or textarea of its body; else
//   `initialFocus`; else its first control), never on the Close button, so typing goes where the
//   person expects;
// - focus is trapped: Tab and Shift+Tab cycle inside, and focus that lands outside (the control
//   that had it was removed, e.g. an "Invite" button replaced by "Invited", or a click on the
//   page behind) is brought back in;
// - Escape closes it, wherever focus is, and the backdrop does too;
// - on close, focus returns to what opened it.
// Keys are handled on the document, not on the dialog element, because a focused control that
// disappears leaves focus on <body>, where the dialog's own listener would never hear Escape.
// Dialogs opened from dialogs stack: only the topmost one handles keys and focus.
import { useEffect, useRef, type ReactNode } from 'react';
import { IconX } from './icons';

let idSeq = 0;
const stack: HTMLElement[] = [];

const FIELDS = 'input:not([disabled]):not([type="hidden"]), select:not([disabled]), textarea:not([disabled])';

export function Modal({
  title,
  onClose,
  children,
  footer,
  initialFocus,
  className,
  role = 'dialog',
}: {
  title: string;
  onClose: () => void;
  children: ReactNode;
  footer?: ReactNode;
  initialFocus?: string; // selector inside the dialog, used when the body has no field
  className?: string;
  role?: 'dialog' | 'alertdialog';
}) {
  const ref = useRef<HTMLDivElement>(null);
  const titleId = useRef(`modal-title-${++idSeq}`).current;
  const closeRef = useRef(onClose);
  closeRef.current = onClose;
  const initialRef = useRef(initialFocus);

  useEffect(() => {
    const opener = document.activeElement as HTMLElement | null;
    const el = ref.current!;
    stack.push(el);
    const body = el.querySelector<HTMLElement>('.modal__body');
    const first =
      (initialRef.current && el.querySelector<HTMLElement>(initialRef.current)) ||
      body?.querySelector<HTMLElement>(FIELDS) ||
      (body && focusables(body)[0]) ||
      focusables(el)[0];
    (first ?? el).focus();

    const top = () => stack[stack.length - 1] === el;
    const onKey = (e: KeyboardEvent) => {
      if (!top()) return;
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        closeRef.current();
      } else if (e.key === 'Tab') {
        const f = focusables(el);
        if (f.length === 0) {
          e.preventDefault();
          el.focus();
          return;
        }
        const i = f.indexOf(document.activeElement as HTMLElement);
        if (i === -1) {
          // Focus is outside (on <body> after its control went away): back to the first one.
          e.preventDefault();
          (e.shiftKey ? f[f.length - 1] : f[0]).focus();
        } else if (e.shiftKey && i === 0) {
          e.preventDefault();
          f[f.length - 1].focus();
        } else if (!e.shiftKey && i === f.length - 1) {
          e.preventDefault();
          f[0].focus();
        }
      }
    };
    const onFocusIn = (e: FocusEvent) => {
      if (!top() || el.contains(e.target as Node)) return;
      (focusables(el)[0] ?? el).focus();
    };
    document.addEventListener('keydown', onKey, true);
    document.addEventListener('focusin', onFocusIn);
    return () => {
      document.removeEventListener('keydown', onKey, true);
      document.removeEventListener('focusin', onFocusIn);
      const i = stack.indexOf(el);
      if (i >= 0) stack.splice(i, 1);
      if (opener && document.contains(opener)) opener.focus();
    };
  }, []);

  return (
    <div
      className="modal-backdrop"
      onMouseDown={(e) => {
        if (e.target === e.currentTarget) onClose();
      }}
    >
      <div
        className={`modal${className ? ` ${className}` : ''}`}
        role={role}
        aria-modal="true"
        aria-labelledby={titleId}
        tabIndex={-1}
        ref={ref}
      >
        <div className="modal__head">
          <h2 id={titleId}>{title}</h2>
          <button type="button" className="btn btn--ghost btn--icon" onClick={onClose} aria-label="Close">
            <IconX />
          </button>
        </div>
        <div className="modal__body">{children}</div>
        {footer && <div className="modal__foot">{footer}</div>}
      </div>
    </div>
  );
}

// A yes/no question before an action that cannot be undone (removing someone). Focus starts on
// Cancel, the safe answer; the action button says what it does.
export function ConfirmDialog({
  title,
  children,
  confirmLabel,
  onConfirm,
  onCancel,
  danger = true,
}: {
  title: string;
  children: ReactNode;
  confirmLabel: string;
  onConfirm: () => void;
  onCancel: () => void;
  danger?: boolean;
}) {
  return (
    <Modal
      title={title}
      onClose={onCancel}
      role="alertdialog"
      initialFocus="[data-autofocus]"
      footer={
        <>
          <button type="button" className="btn" onClick={onCancel} data-autofocus>
            Cancel
          </button>
          <button type="button" className={`btn ${danger ? 'btn--danger' : 'btn--primary'}`} onClick={onConfirm}>
            {confirmLabel}
          </button>
        </>
      }
    >
      {children}
    </Modal>
  );
}

function focusables(root: HTMLElement): HTMLElement[] {
  return Array.from(
    root.querySelectorAll<HTMLElement>(
      'a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])',
    ),
  ).filter((e) => e.offsetParent !== null || e === document.activeElement);
}

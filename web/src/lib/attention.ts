// What tells a user something happened while they look elsewhere: the unread total in the tab
// title ("(3) Parley"), the same number on a canvas-drawn favicon, and browser notifications.
// Pages set the base title with setPageTitle(); the chat list sets the count with setUnreadTotal().
// Notification permission is only ever asked from a click (requestNotifications), never on load:
// browsers penalise (and users distrust) a prompt nobody asked for.

let baseTitle = 'Parley';
let unreadTotal = 0;

function applyTitle() {
  document.title = unreadTotal > 0 ? `(${unreadTotal > 999 ? '999+' : unreadTotal}) ${baseTitle}` : baseTitle;
}

export function setPageTitle(title: string): void {
  baseTitle = title;
  applyTitle();
}

export function setUnreadTotal(n: number): void {
  if (n === unreadTotal) return;
  unreadTotal = n;
  applyTitle();
  drawFavicon(n);
}

// The app icon of public/favicon.svg redrawn on a canvas, with a red count badge in the corner.
// The original link is kept and restored at zero, so the crisp SVG shows when nothing is unread.
const ICON_PATH = 'M16 22a6 6 0 0 1 6-6h20a6 6 0 0 1 6 6v12a6 6 0 0 1-6 6H30l-9 8v-8a6 6 0 0 1-5-6z';
let originalIcon: { href: string; type: string } | null = null;

function iconLink(): HTMLLinkElement {
  let link = document.querySelector<HTMLLinkElement>('link[rel="icon"]');
  if (!link) {
    link = document.createElement('link');
    link.rel = 'icon';
    document.head.appendChild(link);
  }
  if (!originalIcon) originalIcon = { href: link.getAttribute('href') || '/favicon.svg', type: link.type };
  return link;
}

export function faviconBadgeDataUrl(n: number): string | null {
  const canvas = document.createElement('canvas');
  canvas.width = 64;
  canvas.height = 64;
  const ctx = canvas.getContext('2d');
  if (!ctx || typeof Path2D === 'undefined') return null;
  ctx.fillStyle = '#4f46e5';
  ctx.beginPath();
  ctx.roundRect(0, 0, 64, 64, 16);
  ctx.fill();
  ctx.fillStyle = '#ffffff';
  ctx.fill(new Path2D(ICON_PATH));
  const label = n > 99 ? '99+' : String(n);
  const r = 19;
  ctx.fillStyle = '#dc2626';
  ctx.beginPath();
  ctx.arc(64 - r, r, r, 0, Math.PI * 2);
  ctx.fill();
  ctx.fillStyle = '#ffffff';
  ctx.font = `bold ${label.length > 2 ? 17 : label.length > 1 ? 22 : 28}px system-ui, sans-serif`;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(label, 64 - r, r + 1);
  return canvas.toDataURL('image/png');
}

function drawFavicon(n: number) {
  if (typeof document === 'undefined') return;
  const link = iconLink();
  if (n <= 0) {
    link.type = originalIcon!.type;
    link.href = originalIcon!.href;
    link.removeAttribute('data-unread');
    return;
  }
  const url = faviconBadgeDataUrl(n);
  if (!url) return;
  link.type = 'image/png';
  link.href = url;
  link.setAttribute('data-unread', String(n));
}

// ---------------------------------------------------------------------------------------------
// Notifications

export type Permission = 'unsupported' | 'default' | 'granted' | 'denied';

export function notificationPermission(): Permission {
  if (typeof window === 'undefined' || !('Notification' in window)) return 'unsupported';
  return Notification.permission as Permission;
}

// Only call from a user gesture (a click handler).
export async function requestNotifications(): Promise<Permission> {
  if (notificationPermission() === 'unsupported') return 'unsupported';
  try {
    return (await Notification.requestPermission()) as Permission;
  } catch {
    return notificationPermission();
  }
}

export function showNotification(opts: { title: string; body: string; tag: string; icon?: string; onClick: () => void }): void {
  if (notificationPermission() !== 'granted') return;
  try {
    const n = new Notification(opts.title, { body: opts.body, tag: opts.tag, icon: opts.icon || '/favicon.svg' });
    n.onclick = () => {
      window.focus();
      opts.onClick();
      n.close();
    };
  } catch {
    // Some mobile browsers only allow notifications from a service worker: nothing to do here.
  }
}

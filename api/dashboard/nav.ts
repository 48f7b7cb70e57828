import type { Viewer } from './viewer';

/**
 * The dashboard's top navigation. A feature that adds pages (channels, search, starred jobs, metrics)
 * adds its entry here; `shown` hides entries the viewer cannot use.
 */
export interface NavEntry {
  href: string;
  label: string;
  shown?: (viewer: Viewer) => boolean;
}

export const NAV: NavEntry[] = [
  { href: '/', label: 'Home' },
  { href: '/projects', label: 'Projects' },
  { href: '/queue', label: 'Queue' },
  { href: '/builders', label: 'Builders' },
  { href: '/channels', label: 'Channels' },
  { href: '/metrics', label: 'Metrics' },
  { href: '/starred', label: 'Starred', shown: (v) => Boolean(v.principal?.userId) },
  { href: '/admin', label: 'Admin', shown: (v) => v.principal?.role === 'admin' },
];

import type { PageDef } from '../page';
import { homePage } from './home';
import { projectsPage, projectPage } from './projects';
import { jobsetPage } from './jobset';
import { evaluationPage } from './evaluation';
import { buildPage } from './build';
import { queuePage } from './queue';
import { buildersPage } from './builders';
import { loginPage } from './login';
import { adminPage } from './admin';
import { workflowPage } from './workflow';
import { channelPage, channelsPage } from './channels';
import { searchPage } from './search';
import { starredPage } from './starred';
import { metricsPage } from './metrics';
import { webhooksPage } from './webhooks';
import { notificationTasksPage } from './notification-tasks';

/**
 * Every page of the dashboard. A feature that brings pages adds a module under pages/, one entry here,
 * and its entry in ../nav.ts.
 */
export const PAGES: PageDef[] = [
  homePage,
  projectsPage,
  projectPage,
  webhooksPage,
  jobsetPage,
  evaluationPage,
  buildPage,
  queuePage,
  buildersPage,
  channelsPage,
  channelPage,
  searchPage,
  starredPage,
  metricsPage,
  loginPage,
  adminPage,
  notificationTasksPage,
  workflowPage,
];

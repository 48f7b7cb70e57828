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

/**
 * Every page of the dashboard. A feature that brings pages (channels, search, starred jobs, metrics)
 * adds a module under pages/, one line here, and its entry in ../nav.ts.
 */
export const PAGES: PageDef[] = [homePage, projectsPage, projectPage, jobsetPage, evaluationPage, buildPage, queuePage, buildersPage, loginPage, adminPage, workflowPage];

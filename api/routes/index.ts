import type { RouteDef } from '../route';
import { projectRoutes } from './projects';
import { jobsetRoutes } from './jobsets';
import { projectSetupRoutes } from './project-setup';
import { systemRoutes } from './system';
import { buildLifecycleRoutes } from './build-lifecycle';
import { identityRoutes } from './identity';
import { builderRoutes } from './builders';
import { buildRoutes } from './builds';
import { evaluationRoutes } from './evaluations';
import { notificationTaskRoutes } from './notification-tasks';
import { channelRoutes } from './channels';
import { channelFileRoutes } from './channel-files';
import { jobBadgeRoutes } from './job-badges';
import { nixCacheRoutes } from './nix-cache';
import { pinnedBuildRoutes } from './pinned-builds';
import { searchRoutes } from './search';
import { metricsRoutes } from './metrics';
import { webhookRoutes } from './webhooks';

/** The one route table: every implemented route of the circus API, declared once. */
export function allRoutes(): RouteDef[] {
  const routes: RouteDef[] = [];
  routes.push(...systemRoutes(() => routes));
  routes.push(...projectRoutes);
  routes.push(...jobsetRoutes, ...projectSetupRoutes);
  routes.push(...buildLifecycleRoutes);
  routes.push(...identityRoutes);
  routes.push(...builderRoutes, ...buildRoutes, ...evaluationRoutes);
  routes.push(...notificationTaskRoutes);
  routes.push(...channelRoutes, ...channelFileRoutes, ...jobBadgeRoutes);
  routes.push(...nixCacheRoutes, ...pinnedBuildRoutes);
  routes.push(...searchRoutes, ...metricsRoutes);
  routes.push(...webhookRoutes());
  return routes;
}

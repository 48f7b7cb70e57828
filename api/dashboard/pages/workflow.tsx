import { definePage, isUuid } from '../page';

/**
 * From a workflow back to its page: `/workflows/build-<id>` → the build, `/workflows/eval-<id>` → the
 * evaluation. The Temporal UI shows each workflow's BuildId/EvaluationId search attributes; this page
 * takes the workflow ID as it appears there.
 */
export const workflowPage = definePage({
  path: '/workflows/{id}',
  async render({ params }) {
    const match = /^(build|eval)-(.+)$/.exec(params.id ?? '');
    if (!match || !isUuid(match[2])) return { notFound: 'no page for this workflow' };
    return { redirect: match[1] === 'build' ? `/builds/${match[2]}` : `/evaluations/${match[2]}` };
  },
});

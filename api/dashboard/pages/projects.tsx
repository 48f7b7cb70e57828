import { definePage, defineRecordPage } from '../page';
import { Layout } from '../layout';
import type { ComponentChildren } from 'preact';
import { BuildTable, Empty, Pager, Section, Time, ItemList } from '../components';
import { cutPage, pageWindow } from '../paging';
import { findProject, pageProjects } from '../../queries/projects';
import { pageJobsets } from '../../queries/jobsets';
import { projectBuilds } from '../../queries/builds';

/** A form the script sends to the API as JSON (hidden without script, where it could not work). */
export function ApiForm(props: { method: string; path: string; after: string; label: string; children: ComponentChildren; title: string }) {
  return (
    <form class="api-form card" data-api-method={props.method} data-api-path={props.path} data-after={props.after} hidden aria-label={props.title}>
      <h3>{props.title}</h3>
      {props.children}
      <button type="submit">{props.label}</button>
      <p class="form-error" role="alert" />
    </form>
  );
}

export function Field(props: { name: string; label: string; required?: boolean; type?: 'text' | 'number' | 'url'; value?: string; hint?: string; as?: 'string' | 'number' }) {
  const id = `f-${props.name}`;
  return (
    <p class="field">
      <label for={id}>{props.label}</label>
      <input id={id} name={props.name} type={props.type === 'number' ? 'number' : 'text'} required={props.required} value={props.value} data-as={props.as ?? (props.type === 'number' ? 'number' : 'string')} />
      {props.hint ? <small>{props.hint}</small> : null}
    </p>
  );
}

export const projectsPage = definePage({
  path: '/projects',
  async render({ deps, viewer, query }) {
    const window = pageWindow(query);
    const page = await pageProjects(deps.db, { limit: window.limit + 1, offset: window.offset });
    const { rows, more } = cutPage(page.items as Awaited<ReturnType<typeof findProject>>[], window);
    return (
      <Layout title="Projects" viewer={viewer} current="/projects">
        {viewer.may('POST', '/api/v1/projects') ? (
          <ApiForm method="POST" path="/api/v1/projects" after="/projects/{id}" label="Create project" title="New project">
            <Field name="name" label="Name" required hint="letters, digits, - and _" />
            <Field name="repository_url" label="Repository URL" required />
            <Field name="description" label="Description" />
          </ApiForm>
        ) : null}
        <ItemList
          items={rows}
          empty="No project yet."
          item={(p) => (
            <>
              <a href={`/projects/${p!.id}`}>{p!.display_name || p!.name}</a> <span class="muted">{p!.repository_url}</span>
            </>
          )}
        />
        <Pager path="/projects" window={window} more={more} />
      </Layout>
    );
  },
});

export const projectPage = defineRecordPage({
  path: '/projects/{id}',
  noun: 'project',
  find: (db, id) => findProject(db, id),
  async render({ deps, viewer, query }, project) {
    const window = pageWindow(query);
    const [jobsets, builds] = await Promise.all([
      pageJobsets(deps.db, project.id, { limit: 100, offset: 0 }),
      projectBuilds(deps.db, project.id, window.limit + 1, window.offset),
    ]);
    const recent = cutPage(builds, window);
    return (
      <Layout title={project.display_name || project.name} viewer={viewer} current="/projects">
        <p class="crumbs">
          <a href="/projects">Projects</a> / {project.name}
        </p>
        {project.description ? <p>{project.description}</p> : null}
        <p class="muted">
          Repository <code>{project.repository_url}</code> · <a href={`/projects/${project.id}/webhooks`}>Webhooks</a>
        </p>
        <Section title="Jobsets" id="jobsets">
          <ItemList
            items={jobsets.items}
            empty="No jobset yet."
            item={(j) => (
              <>
                <a href={`/jobsets/${j.id}`}>{j.name}</a> <span class="muted">{j.nix_expression}</span> {j.enabled ? null : <span class="status neutral">disabled</span>}
              </>
            )}
          />
          {viewer.may('POST', '/api/v1/projects/{id}/jobsets') ? (
            <ApiForm method="POST" path={`/api/v1/projects/${project.id}/jobsets`} after="/jobsets/{id}" label="Create jobset" title="New jobset">
              <Field name="name" label="Name" required />
              <Field name="nix_expression" label="Nix expression (file of the repository)" required value="release.nix" />
              <Field name="check_interval" label="Check interval (seconds, 0 = off)" type="number" value="0" />
            </ApiForm>
          ) : null}
        </Section>
        <Section title="Builds" id="builds">
          {recent.rows.length === 0 ? <Empty>No build yet.</Empty> : <BuildTable builds={recent.rows} caption={`Builds of ${project.name}`} />}
          <Pager path={`/projects/${project.id}`} window={window} more={recent.more} />
        </Section>
        <p class="muted">
          Created <Time at={project.created_at} />
        </p>
      </Layout>
    );
  },
});

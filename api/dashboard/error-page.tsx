import { Layout } from './layout';
import type { Viewer } from './viewer';

/** An HTML answer for a page that does not exist or may not be seen. */
export function ErrorPage({ viewer, title, message }: { viewer: Viewer; title: string; message: string }) {
  return (
    <Layout title={title} viewer={viewer}>
      <p>{message}</p>
      <p>
        <a href="/">Back to the overview</a>
      </p>
    </Layout>
  );
}

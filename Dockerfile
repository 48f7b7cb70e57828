# One image for every Ringmaster part: the API (default), the worker, migrate and temporal-ready.
#   docker build -t ringmaster .
#   docker run ... ringmaster                                   # the API
#   docker run ... ringmaster node bin/ringmaster.js worker     # a worker
FROM node:20-bookworm-slim

# Nix for evaluations and builds (single-user, no daemon), git for inputs, the OpenSSH client for
# remote builders, xz for channels and NARs. The Temporal CLI is not needed: the image always talks
# to a Temporal cluster (TEMPORAL_ADDRESS).
RUN apt-get update \
 && apt-get install -y --no-install-recommends nix-bin git openssh-client xz-utils ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /etc/nix \
 && printf 'sandbox = false\nbuild-users-group =\n' > /etc/nix/nix.conf

WORKDIR /app

# Dependencies first, so a source change does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY . .
# Prebuild the workflow bundle so a worker starts without bundling.
RUN npm run build

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    RINGMASTER_DATA_DIR=/var/lib/ringmaster
RUN mkdir -p /var/lib/ringmaster
VOLUME ["/var/lib/ringmaster"]
EXPOSE 3000

CMD ["node", "bin/ringmaster.js", "api"]

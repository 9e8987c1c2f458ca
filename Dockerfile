# syntax=docker/dockerfile:1
# heqet server image: compiled JavaScript, production dependencies only, non-root.
#   docker build -t heqet .
#   docker run -p 8080:8080 -v heqet-data:/var/lib/heketi \
#     -v /path/heketi.json:/etc/heketi/heketi.json:ro heqet
# deploy/image-steps.ts runs these same steps without a container engine
# (test/image-build.test.ts, so CI runs them): keep every RUN an npm command
# or one of the image-only set-up lines that script knows.

# build stage: full dependencies (typescript), tsc into dist/
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin/build.js ./bin/build.js
COPY api ./api
COPY src ./src
COPY db ./db
COPY executors ./executors
RUN npm run build

# runtime stage: production dependencies and the compiled output only
FROM node:20-bookworm-slim
# mount.glusterfs for the CSI node plugin (`heqet csi --mode=node`, deploy/csi-node.yaml)
RUN apt-get update && apt-get install -y --no-install-recommends glusterfs-client && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/heqet
ENV NODE_ENV=production
# glibc malloc: two arenas instead of eight per core for node's threads, and freed memory
# handed back to the kernel past 128 KiB instead of a threshold that grows up to 32 MiB:
# about 6 MiB less peak RSS under a read load, no measurable CPU cost (docs/benchmarks.md,
# "Reads and footprint, 2026-12-07"); `npm run bench` starts its server with this ENV too
ENV MALLOC_ARENA_MAX=2 MALLOC_TRIM_THRESHOLD_=131072
COPY package.json package-lock.json ./
# the npm cache stays in the build cache mount, out of the image
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY --from=build /src/dist ./dist
# the DB directory belongs to the unprivileged user (uid 1000 `node`)
RUN mkdir -p /var/lib/heketi /etc/heketi && chown node:node /var/lib/heketi
VOLUME ["/var/lib/heketi"]
EXPOSE 8080
USER node
# Kubernetes ignores HEALTHCHECK and uses the Deployment's probes on /hello
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.HEQET_HEALTH_PORT||8080}/hello`).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "bin/heqet.js"]
CMD ["--config=/etc/heketi/heketi.json"]

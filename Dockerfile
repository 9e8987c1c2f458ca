# heqet server image. Build: docker build -t heqet .
# Run:   docker run -p 8080:8080 -v heqet-data:/var/lib/heketi \
#          -v /path/heketi.json:/etc/heketi/heketi.json heqet
FROM node:20-bookworm-slim
WORKDIR /opt/heqet
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY api ./api
COPY src ./src
COPY db ./db
COPY executors ./executors
COPY etc ./etc
COPY tsconfig.json ./
ENV NODE_ENV=production
VOLUME ["/var/lib/heketi"]
EXPOSE 8080
USER node
ENTRYPOINT ["node", "bin/heqet.js"]
CMD ["--config=/etc/heketi/heketi.json"]

# The image the Airbyte platform runs: `docker build -t klaviyo-source/source-klaviyo:0.1.0 .`
# Stage 1 builds the wheel from this checkout; stage 2 installs only the wheel, as a non-root
# user, with `source-klaviyo` (spec|check|discover|read) as the entrypoint.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir build==1.2.2 \
    && python -m build --wheel --outdir /dist

FROM python:3.11-slim
ARG VERSION=0.1.0
LABEL io.airbyte.name=klaviyo-source/source-klaviyo \
      io.airbyte.version=${VERSION} \
      org.opencontainers.image.licenses=MIT
COPY --from=build /dist /tmp/dist
RUN pip install --no-cache-dir /tmp/dist/klaviyo_source-*.whl \
    && rm -rf /tmp/dist \
    && useradd --create-home --uid 1000 airbyte
USER 1000:1000
WORKDIR /home/airbyte
ENV PYTHONUNBUFFERED=1
ENV AIRBYTE_ENTRYPOINT="source-klaviyo"
ENTRYPOINT ["source-klaviyo"]

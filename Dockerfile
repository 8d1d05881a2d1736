# The mesh's one image: meshd, dmctl, meshq and the demo's scripts on
# Debian 12. docker-compose.yml runs it as every service; the role is the
# argument of scripts/container-entry.sh (governance, node DOMAIN, tour).
#   docker build -t datamesh .

# ---- build: the packages scripts/deps.sh lists, then the release build
FROM debian:12 AS build
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
RUN bash scripts/deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDM_TESTS=OFF \
 && cmake --build build -j"$(nproc)" --target meshd dmctl meshq

# ---- run: the shared libraries those binaries load, nothing to build with
FROM debian:12
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libzmq5 libprotobuf-c1 libsodium23 liblmdb0 libyaml-0-2 libcjson1 libsqlite3-0 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/bin/meshd /src/build/bin/dmctl /src/build/bin/meshq /usr/local/bin/
# tour.sh finds the contracts in ../docs/examples and the record generator
# beside itself, as in the source tree.
COPY scripts/container-entry.sh scripts/tour.sh scripts/sample-data.sh /opt/datamesh/scripts/
COPY docs/examples/ /opt/datamesh/docs/examples/
ENV MESH_BIN=/usr/local/bin
EXPOSE 7400
ENTRYPOINT ["/opt/datamesh/scripts/container-entry.sh"]
CMD ["--help"]

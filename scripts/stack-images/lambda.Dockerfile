# The image moto runs zip functions in (MOTO_DOCKER_LAMBDA_IMAGE): `docker run IMAGE HANDLER EVENT_JSON` with
# the zip at /var/task. lambda-entrypoint.sh serves the event through the runtime's local mode.
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/mkdir", "-p", "/tmp", "/var/task", "/opt"]
COPY lambda-entrypoint.sh /lambda-entrypoint.sh
ENV PATH=/bin LAMBDA_TASK_ROOT=/var/task
WORKDIR /var/task
ENTRYPOINT ["/bin/sh", "/lambda-entrypoint.sh"]

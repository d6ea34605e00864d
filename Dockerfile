# The interview-bot image for compose.yaml: the Slack app, `chroma run` and llama-cpp-python's
# OpenAI-compatible server all come from it (one set of pinned versions: the Chroma client and server
# match). The grader's llama.cpp comes prebuilt; the server's (llama-cpp-python) compiles from source
# (install.sh picks portable CPU flags).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN ./install.sh --with-llama-server && pip install --no-cache-dir -e ".[postgres]"
# Slack's HTTP port (the Events API posts to /slack/events)
EXPOSE 3000
CMD ["interview", "slack", "--http", "--port", "3000"]

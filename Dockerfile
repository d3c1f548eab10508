# MiniLLM Lab in a container: one server for a class.
#   docker build -t minillm-lab .
#   docker run -p 8501:8501 minillm-lab
FROM python:3.11-slim

# One Python process serves every student; tiny tensors run best on one thread each.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    OMP_NUM_THREADS=1

WORKDIR /app
COPY requirements.txt .
# torch==2.13.0 from the CPU index: the default index serves a multi-GB CUDA build.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt

COPY . .
RUN useradd --create-home lab && chown -R lab /app
USER lab

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health').read() != b'ok')"

CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501", "--server.headless=true"]

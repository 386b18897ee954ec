from setuptools import find_packages, setup

setup(
    name="deepfm_graph",
    version="0.1.0",
    description="DeepFM (Guo et al., IJCAI 2017) in TensorFlow-1 graph style, with a scikit-learn feel",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["deepfm_graph", "deepfm_graph.*"]),
    python_requires=">=3.9",
    install_requires=[
        "tensorflow>=2.15",
        "numpy>=1.23",
        "pandas>=1.5",
        "scikit-learn>=1.2",
        "scipy>=1.9",
        "matplotlib>=3.5",
    ],
    extras_require={"test": ["pytest>=7"]},
    entry_points={"console_scripts": ["deepfm-train=deepfm_graph.cli:train_main",
                                      "deepfm-predict=deepfm_graph.cli:predict_main"]},
)

# frozen_string_literal: true

# Templates may `require_relative` helper files from their own source tree
# (the git checkout, or the template's directory) and nothing outside it: a
# template from one repository must not read another tenant's files or the
# executor's. Gems are off (`--disable-gems`); the standard library stays
# loadable through plain `require`.
module PangeaCompiler
  # Resolves `require_relative` like Ruby does (from the calling file), then
  # refuses targets outside the root.
  module SourceTree
    class << self
      attr_reader :root

      # Confines `require_relative` to `dir` for the rest of the run.
      def confine(dir)
        @root = File.realpath(dir)
      end

      def inside?(path)
        real = File.exist?(path) ? File.realpath(path) : File.expand_path(path)
        real == @root || real.start_with?(@root + File::SEPARATOR)
      end
    end

    private

    # Always resolved here (not with `super`): Ruby's own would resolve from
    # this file instead of the caller's.
    def require_relative(path)
      caller_path = caller_locations(1, 1).first&.absolute_path
      raise LoadError, "cannot infer basepath for require_relative #{path.to_s.inspect}" if caller_path.nil?

      target = File.expand_path(path.to_s, File.dirname(caller_path))
      target = "#{target}.rb" if !File.exist?(target) && File.exist?("#{target}.rb")
      # Only the user's files are confined; the standard library loads its own parts.
      if SourceTree.root && SourceTree.inside?(caller_path) && !SourceTree.inside?(target)
        raise LoadError, "require_relative #{path.to_s.inspect} leaves the template's source tree (#{SourceTree.root})"
      end

      require target
    end
  end

  ::Kernel.prepend(SourceTree)
end
